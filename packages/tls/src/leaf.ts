/** Server and client leaf certificates, always issued by the issuing CA (never self-signed). */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';
import type { IssuingCa } from './ca.js';
import { CaOptionsError } from './ca.js';
import { assertValidFqdn } from './fqdn.js';
import { backdatedNotBefore, generateKeyPair, privateKeyToPem, randomSerial, signingAlgorithm } from './keys.js';

export const DEFAULT_LEAF_VALIDITY_DAYS = 365;
export const MAX_LEAF_VALIDITY_DAYS = 397;
export const DEFAULT_SANS = ['localhost', '127.0.0.1', '::1'];

export interface LeafOptions {
  /** FQDN-style common name, e.g. `kms.cryptoutil.demo.local`. */
  commonName: string;
  /** DNS names and IP addresses (default localhost, 127.0.0.1, ::1); the common name is always added. */
  subjectAltNames?: string[];
  usage: 'server' | 'client' | 'both';
  validityDays?: number;
}

export interface Leaf {
  /** PEM chain, leaf first, then the CAs up to (not including) the root. */
  chainPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  certificate: x509.X509Certificate;
}

function sanEntries(names: string[]): x509.JsonGeneralName[] {
  return names.map((name) => {
    if (isIP(name)) return { type: 'ip', value: name };
    assertValidFqdn(name);
    return { type: 'dns', value: name };
  });
}

export async function issueLeaf(ca: IssuingCa, options: LeafOptions): Promise<Leaf> {
  const validityDays = options.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
  if (validityDays < 1 || validityDays > MAX_LEAF_VALIDITY_DAYS) {
    throw new CaOptionsError(`leaf validity must be 1 to ${MAX_LEAF_VALIDITY_DAYS} days, got ${validityDays}`);
  }
  assertValidFqdn(options.commonName);
  const names = [...new Set([options.commonName, ...(options.subjectAltNames ?? DEFAULT_SANS)])];
  const usages = {
    server: [x509.ExtendedKeyUsage.serverAuth],
    client: [x509.ExtendedKeyUsage.clientAuth],
    both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  }[options.usage];
  const issuer = ca.chain[0];
  if (!issuer) throw new CaOptionsError('the issuing CA has no certificate');
  const keys = await generateKeyPair(ca.curve);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${options.commonName}`,
    issuer: issuer.subject,
    notBefore: backdatedNotBefore(),
    notAfter: new Date(Date.now() + validityDays * 86_400_000),
    signingAlgorithm: signingAlgorithm(ca.curve),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.SubjectAlternativeNameExtension(sanEntries(names)),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey),
    ],
  });
  const intermediates = ca.chain.slice(0, -1);
  return {
    certificate,
    chainPem: [certificate, ...intermediates].map((cert) => cert.toString('pem')).join('\n') + '\n',
    keyPem: await privateKeyToPem(keys.privateKey),
  };
}
