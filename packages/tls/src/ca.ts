/**
 * The CA hierarchy (deployments.md "TLS"): root → policy CA(s) → issuing CA, `chainLength` CAs in all
 * (default 3). Each CA's pathLen is the number of CAs below it. Only the issuing CA keeps its private key:
 * parents sign their child and are then dropped, so leaves can only ever come from the issuing CA.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { assertValidFqdn } from './fqdn.js';
import { backdatedNotBefore, generateKeyPair, randomSerial, signingAlgorithm, type Curve } from './keys.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const DAY_MS = 86_400_000;
export const MAX_CA_VALIDITY_DAYS = 25 * 365;

export class CaOptionsError extends Error {
  readonly code = 'invalid_ca_options';
  constructor(message: string) {
    super(message);
    this.name = 'CaOptionsError';
  }
}

export interface CaHierarchyOptions {
  /** Number of CAs including the root, 1 to 5 (default 3: root → policy → issuing). */
  chainLength?: number;
  curve?: Curve;
  /** DNS-style suffix for CA names (default `cryptoutil.demo.local`). */
  namePrefix?: string;
  validityDays?: number;
}

export interface IssuingCa {
  curve: Curve;
  /** Issuing CA first, root last. */
  chain: x509.X509Certificate[];
  privateKey: CryptoKey;
}

export interface CaHierarchy extends IssuingCa {
  root: x509.X509Certificate;
}

function caName(prefix: string, index: number, chainLength: number): string {
  if (index === 0) return `root-ca.${prefix}`;
  if (index === chainLength - 1) return `issuing-ca.${prefix}`;
  return `policy-ca-${index}.${prefix}`;
}

export async function createCaHierarchy(options: CaHierarchyOptions = {}): Promise<CaHierarchy> {
  const chainLength = options.chainLength ?? 3;
  const curve = options.curve ?? 'P-256';
  const prefix = options.namePrefix ?? 'cryptoutil.demo.local';
  const validityDays = options.validityDays ?? 10 * 365;
  if (!Number.isInteger(chainLength) || chainLength < 1 || chainLength > 5) {
    throw new CaOptionsError(`chainLength must be an integer from 1 to 5, got ${chainLength}`);
  }
  if (validityDays < 1 || validityDays > MAX_CA_VALIDITY_DAYS) {
    throw new CaOptionsError(`CA validity must be 1 to ${MAX_CA_VALIDITY_DAYS} days, got ${validityDays}`);
  }
  assertValidFqdn(prefix);

  const notBefore = backdatedNotBefore();
  const notAfter = new Date(Date.now() + validityDays * DAY_MS);
  const certificates: x509.X509Certificate[] = [];
  let parent: { cert: x509.X509Certificate; key: CryptoKey } | undefined;
  for (let index = 0; index < chainLength; index++) {
    const keys = await generateKeyPair(curve);
    const name = `CN=${caName(prefix, index, chainLength)}`;
    const extensions = [
      new x509.BasicConstraintsExtension(true, chainLength - 1 - index, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(parent ? [await x509.AuthorityKeyIdentifierExtension.create(parent.cert.publicKey)] : []),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: name,
      issuer: parent ? parent.cert.subject : name,
      notBefore,
      notAfter,
      signingAlgorithm: signingAlgorithm(curve),
      publicKey: keys.publicKey,
      signingKey: parent ? parent.key : keys.privateKey,
      extensions,
    });
    certificates.push(cert);
    parent = { cert, key: keys.privateKey };
  }
  if (!parent) throw new CaOptionsError('no CA created');
  const chain = [...certificates].reverse();
  return { curve, chain, root: certificates[0] as x509.X509Certificate, privateKey: parent.key };
}
