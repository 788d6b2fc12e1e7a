/** Which algorithm to choose: one line of advice per family, recognised from the name. */
const FAMILIES: [test: RegExp, family: string, advice: string][] = [
  [/\/dir$/, 'Symmetric encryption', 'Fastest; only the KMS can decrypt. The usual choice for encrypting data.'],
  [/\/A\d+(GCM)?KW$/, 'Key wrapping', 'A fresh content key per message, wrapped with an AES key held by the KMS.'],
  [/\/RSA-OAEP/, 'RSA encryption', 'Anyone with the public JWKS can encrypt; only the KMS decrypts.'],
  [/\/ECDH-ES/, 'EC encryption', 'Like RSA-OAEP with smaller, faster elliptic-curve keys.'],
  [/\/PBES2/, 'Password-based', 'For interoperability only; prefer a KMS-held key.'],
  [/^(RS|PS)\d+$/, 'RSA signatures', 'The most widely verifiable signatures (JWT, JWS); PS* is the modern padding.'],
  [/^ES\d+$/, 'ECDSA signatures', 'Small keys and signatures; ES256 is the common choice.'],
  [/^EdDSA$/, 'EdDSA signatures', 'Ed25519: fast, deterministic, modern.'],
  [/^HS\d+$/, 'HMAC', 'Symmetric MACs: only the KMS can create and check them.'],
];

export function algorithmFamily(algorithm: string): { family: string; advice: string } {
  const found = FAMILIES.find(([test]) => test.test(algorithm));
  return found ? { family: found[1], advice: found[2] } : { family: 'Other', advice: '' };
}

/** Whether keys of this algorithm encrypt (JWE) rather than sign (JWS). */
export const encrypts = (algorithm: string) => algorithm.includes('/');
