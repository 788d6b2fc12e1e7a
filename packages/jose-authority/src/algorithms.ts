/**
 * The algorithm names an elastic key may carry (kms.md "Algorithms"): JWE `enc/alg` pairs written
 * `A256GCM/A256KW`, or a JWS `alg`. RSA1_5 is refused (Bleichenbacher-style padding oracles).
 */
import { AlgorithmUnsupportedError } from './errors.js';

export const JWE_ENCRYPTIONS = [
  'A128GCM',
  'A192GCM',
  'A256GCM',
  'A128CBC-HS256',
  'A192CBC-HS384',
  'A256CBC-HS512',
] as const;
export const JWE_KEY_MANAGEMENT = [
  'dir',
  'A128KW',
  'A192KW',
  'A256KW',
  'A128GCMKW',
  'A192GCMKW',
  'A256GCMKW',
  'RSA-OAEP',
  'RSA-OAEP-256',
  'RSA-OAEP-384',
  'RSA-OAEP-512',
  'ECDH-ES',
  'ECDH-ES+A128KW',
  'ECDH-ES+A192KW',
  'ECDH-ES+A256KW',
] as const;
export const JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'HS256',
  'HS384',
  'HS512',
  'EdDSA',
] as const;

export type JweEncryption = (typeof JWE_ENCRYPTIONS)[number];
export type JweKeyManagement = (typeof JWE_KEY_MANAGEMENT)[number];
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

export type KeyAlgorithm =
  | { readonly use: 'enc'; readonly name: string; readonly enc: JweEncryption; readonly alg: JweKeyManagement }
  | { readonly use: 'sig'; readonly name: string; readonly alg: JwsAlgorithm };

/** Every algorithm name an elastic key accepts, for documentation and OpenAPI enums. */
export const KEY_ALGORITHM_NAMES: readonly string[] = [
  ...JWE_ENCRYPTIONS.flatMap((enc) => JWE_KEY_MANAGEMENT.map((alg) => `${enc}/${alg}`)),
  ...JWS_ALGORITHMS,
];

function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}

/** Parses `A256GCM/A256KW` or `ES256`; throws `algorithm_unsupported` naming what was wrong. */
export function parseKeyAlgorithm(name: string): KeyAlgorithm {
  if (/RSA1_5/i.test(name)) {
    throw new AlgorithmUnsupportedError('RSA1_5 is refused: PKCS#1 v1.5 encryption is insecure; use RSA-OAEP-256.');
  }
  const slash = name.indexOf('/');
  if (slash === -1) {
    if (isOneOf(JWS_ALGORITHMS, name)) return { use: 'sig', name, alg: name };
    throw new AlgorithmUnsupportedError(
      `Unknown algorithm "${name}": use a JWS alg (${JWS_ALGORITHMS.join(', ')}) or a JWE pair such as A256GCM/A256KW.`,
    );
  }
  const enc = name.slice(0, slash);
  const alg = name.slice(slash + 1);
  if (!isOneOf(JWE_ENCRYPTIONS, enc)) {
    throw new AlgorithmUnsupportedError(`Unknown JWE enc "${enc}": use one of ${JWE_ENCRYPTIONS.join(', ')}.`);
  }
  if (!isOneOf(JWE_KEY_MANAGEMENT, alg)) {
    throw new AlgorithmUnsupportedError(`Unknown JWE alg "${alg}": use one of ${JWE_KEY_MANAGEMENT.join(', ')}.`);
  }
  return { use: 'enc', name, enc, alg };
}

/** Bytes of the content encryption key each `enc` needs (RFC 7518 §5). */
export function contentKeyBytes(enc: JweEncryption): number {
  const sizes: Record<JweEncryption, number> = {
    A128GCM: 16,
    A192GCM: 24,
    A256GCM: 32,
    'A128CBC-HS256': 32,
    'A192CBC-HS384': 48,
    'A256CBC-HS512': 64,
  };
  return sizes[enc];
}
