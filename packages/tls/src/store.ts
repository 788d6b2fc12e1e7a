/**
 * PEM storage of the CA hierarchy and leaves in a data directory (TLS-09, TLS-12):
 *
 *   <dir>/root-ca.pem               root certificate, the one file clients trust (0644)
 *   <dir>/issuing-ca/chain.pem      issuing CA … up to the root (0644)
 *   <dir>/issuing-ca/key.pem        issuing CA private key, PKCS#8 (0600)
 *   <dir>/<leaf>/cert.pem           leaf-first chain without the root (0644)
 *   <dir>/<leaf>/key.pem            leaf private key, PKCS#8 (0600)
 *
 * First start generates; later starts reuse. Nothing existing is ever overwritten, and a partial
 * set of files is an error rather than a reason to regenerate.
 *
 * A deployment may instead provide certificates (a Kubernetes Secret, cert-manager): `root-ca.pem` and
 * the leaf's `cert.pem` and `key.pem` without any issuing CA key. Then nothing is generated or written
 * (`loadProvisionedLeaf`), so the directory may be read-only.
 */
import 'reflect-metadata';
import { toPkcs12 } from './pkcs12.js';
import * as x509 from '@peculiar/x509';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCaHierarchy, type CaHierarchyOptions, type IssuingCa } from './ca.js';
import { privateKeyFromPem, privateKeyToPem, type Curve } from './keys.js';
import { issueLeaf, type LeafOptions } from './leaf.js';

export class TlsStoreError extends Error {
  readonly code = 'tls_store_incomplete';
  constructor(message: string) {
    super(message);
    this.name = 'TlsStoreError';
  }
}

export interface StoredCa extends IssuingCa {
  rootPem: string;
  rootPath: string;
}

export interface StoredLeaf {
  chainPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

async function writeNew(path: string, content: string | Uint8Array, mode: number): Promise<void> {
  await writeFile(path, content, { mode, flag: 'wx' });
  await chmod(path, mode);
}

function splitPem(text: string): x509.X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new x509.X509Certificate(block),
  );
}

function curveOf(cert: x509.X509Certificate): Curve {
  const algorithm = cert.publicKey.algorithm as EcKeyAlgorithm;
  return algorithm.namedCurve as Curve;
}

function presence(paths: string[]): 'all' | 'none' | 'some' {
  const present = paths.filter((path) => existsSync(path)).length;
  return present === paths.length ? 'all' : present === 0 ? 'none' : 'some';
}

export async function loadOrCreateCa(dir: string, options: CaHierarchyOptions = {}): Promise<StoredCa> {
  const rootPath = join(dir, 'root-ca.pem');
  const chainPath = join(dir, 'issuing-ca', 'chain.pem');
  const keyPath = join(dir, 'issuing-ca', 'key.pem');
  const state = presence([rootPath, chainPath, keyPath]);
  if (state === 'some') {
    throw new TlsStoreError(
      `${dir} holds only part of a CA (${rootPath}, ${chainPath}, ${keyPath}); restore or remove it`,
    );
  }
  if (state === 'none') {
    const hierarchy = await createCaHierarchy(options);
    await mkdir(join(dir, 'issuing-ca'), { recursive: true, mode: 0o700 });
    const rootPem = hierarchy.root.toString('pem') + '\n';
    await writeNew(rootPath, rootPem, 0o644);
    await writeNew(chainPath, hierarchy.chain.map((cert) => cert.toString('pem')).join('\n') + '\n', 0o644);
    await writeNew(keyPath, await privateKeyToPem(hierarchy.privateKey), 0o600);
    return { ...hierarchy, rootPem, rootPath };
  }
  const chain = splitPem(await readFile(chainPath, 'utf8'));
  const issuing = chain[0];
  if (!issuing) throw new TlsStoreError(`${chainPath} holds no certificate`);
  const curve = curveOf(issuing);
  return {
    curve,
    chain,
    privateKey: await privateKeyFromPem(await readFile(keyPath, 'utf8'), curve),
    rootPem: await readFile(rootPath, 'utf8'),
    rootPath,
  };
}

export interface LeafStoreOptions {
  /** Also write `<name>/bundle.p12` (mode 0600) protected by this password, if it is not there yet. */
  pkcs12Password?: string;
}

export async function loadOrIssueLeaf(
  dir: string,
  name: string,
  ca: IssuingCa,
  options: LeafOptions,
  storeOptions: LeafStoreOptions = {},
): Promise<StoredLeaf> {
  const certPath = join(dir, name, 'cert.pem');
  const keyPath = join(dir, name, 'key.pem');
  const state = presence([certPath, keyPath]);
  if (state === 'some') throw new TlsStoreError(`${join(dir, name)} holds only part of a certificate; remove it`);
  let stored: StoredLeaf;
  if (state === 'all') {
    stored = { chainPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8'), certPath, keyPath };
  } else {
    const leaf = await issueLeaf(ca, options);
    await mkdir(join(dir, name), { recursive: true, mode: 0o700 });
    await writeNew(certPath, leaf.chainPem, 0o644);
    await writeNew(keyPath, leaf.keyPem, 0o600);
    stored = { chainPem: leaf.chainPem, keyPem: leaf.keyPem, certPath, keyPath };
  }
  const pkcs12Path = join(dir, name, 'bundle.p12');
  if (storeOptions.pkcs12Password !== undefined && !existsSync(pkcs12Path)) {
    const bundle = await toPkcs12({
      certificatePem: stored.chainPem,
      privateKeyPem: stored.keyPem,
      password: storeOptions.pkcs12Password,
      friendlyName: options.commonName,
    });
    await writeNew(pkcs12Path, bundle, 0o600);
  }
  return stored;
}

/**
 * A leaf the deployment provided with the root it chains to, and no issuing CA key in the directory:
 * loaded as is, nothing written. Undefined when the directory is not laid out that way (then the CA is
 * loaded or created and the leaf issued as usual).
 */
export async function loadProvisionedLeaf(
  dir: string,
  name: string,
): Promise<(StoredLeaf & { rootPem: string }) | undefined> {
  const rootPath = join(dir, 'root-ca.pem');
  const certPath = join(dir, name, 'cert.pem');
  const keyPath = join(dir, name, 'key.pem');
  if (existsSync(join(dir, 'issuing-ca', 'key.pem')) || presence([rootPath, certPath, keyPath]) !== 'all') {
    return undefined;
  }
  const [rootPem, chainPem, keyPem] = await Promise.all([
    readFile(rootPath, 'utf8'),
    readFile(certPath, 'utf8'),
    readFile(keyPath, 'utf8'),
  ]);
  return { rootPem, chainPem, keyPem, certPath, keyPath };
}

/**
 * The leaf `name` with the root it chains to: the one the deployment provided (`loadProvisionedLeaf`),
 * else the one issued by the directory's CA (created on first use).
 */
export async function loadLeafWithRoot(
  dir: string,
  name: string,
  options: LeafOptions,
): Promise<StoredLeaf & { rootPem: string }> {
  const provisioned = await loadProvisionedLeaf(dir, name);
  if (provisioned) return provisioned;
  const ca = await loadOrCreateCa(dir);
  return { rootPem: ca.rootPem, ...(await loadOrIssueLeaf(dir, name, ca, options)) };
}
