import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  Pkcs12Error,
  createCaHierarchy,
  issueLeaf,
  loadOrCreateCa,
  loadOrIssueLeaf,
  toPkcs12,
  type Leaf,
} from './index.js';

let dir: string;
let leaf: Leaf;
let file: string;
const password = 'correct horse €';

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const pems = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p12-'));
  leaf = await issueLeaf(await createCaHierarchy(), { commonName: 'kms.cryptoutil.demo.local', usage: 'both' });
  file = join(dir, 'leaf.p12');
  await writeFile(file, await toPkcs12({ certificatePem: leaf.chainPem, privateKeyPem: leaf.keyPem, password }));
});

describe('PKCS#12 export', () => {
  it('holds the leaf and its whole chain, as openssl reads them', () => {
    const certs = pems(openssl('pkcs12', '-in', file, '-passin', `pass:${password}`, '-nokeys'));
    expect(certs).toEqual(pems(leaf.chainPem));
    expect(certs.length).toBe(3);
  });

  it('holds the private key that matches the leaf, under PBES2/AES-256-CBC with a SHA-256 MAC', () => {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    openssl('pkcs12', '-in', file, '-passin', `pass:${password}`, '-nocerts', '-nodes', '-out', keyPath);
    openssl('pkcs12', '-in', file, '-passin', `pass:${password}`, '-nokeys', '-clcerts', '-out', certPath);
    expect(openssl('pkey', '-in', keyPath, '-pubout')).toBe(openssl('x509', '-in', certPath, '-pubkey', '-noout'));
    // openssl prints the structure report on stderr.
    const report = spawnSync('openssl', ['pkcs12', '-in', file, '-passin', `pass:${password}`, '-info', '-noout']);
    const text = `${report.stdout.toString()}${report.stderr.toString()}`;
    expect(report.status).toBe(0);
    expect(text).toMatch(/MAC: sha256/);
    expect(text).toMatch(/PBES2, PBKDF2, AES-256-CBC/);
  });

  it('refuses a wrong password and an empty one', async () => {
    expect(() => openssl('pkcs12', '-in', file, '-passin', 'pass:wrong', '-nokeys')).toThrow();
    await expect(
      toPkcs12({ certificatePem: leaf.chainPem, privateKeyPem: leaf.keyPem, password: '' }),
    ).rejects.toBeInstanceOf(Pkcs12Error);
    await expect(toPkcs12({ certificatePem: 'none', privateKeyPem: leaf.keyPem, password: 'x' })).rejects.toThrow(
      /at least one certificate/,
    );
  });

  it('loads into a Node TLS context', async () => {
    const pfx = await readFile(file);
    expect(() => tls.createSecureContext({ pfx, passphrase: password })).not.toThrow();
  });

  it('is written by the store as bundle.p12 with mode 0600 when a password is given', async () => {
    const storeDir = join(dir, 'store');
    const ca = await loadOrCreateCa(storeDir);
    await loadOrIssueLeaf(storeDir, 'plain', ca, { commonName: 'plain', usage: 'server' });
    await expect(stat(join(storeDir, 'plain', 'bundle.p12'))).rejects.toThrow();
    await loadOrIssueLeaf(storeDir, 'plain', ca, { commonName: 'plain', usage: 'server' }, { pkcs12Password: 'p' });
    expect((await stat(join(storeDir, 'plain', 'bundle.p12'))).mode & 0o777).toBe(0o600);
  });
});
