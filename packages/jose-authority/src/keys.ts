/**
 * Key material as JWKs: the shape each algorithm needs, generation with node:crypto, the public half,
 * and the checks an imported JWK must pass. RSA moduli follow the hash size (2048 for SHA-256, 3072 for
 * SHA-384, 4096 for SHA-512) so the key is never the weaker link.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import type { JWK } from 'jose';
import { contentKeyBytes, type KeyAlgorithm } from './algorithms.js';
import { AlgorithmUnsupportedError, InvalidJwkError } from './errors.js';

export type KeySpec =
  | { readonly kty: 'oct'; readonly bytes: number }
  | { readonly kty: 'RSA'; readonly modulusLength: 2048 | 3072 | 4096 }
  | { readonly kty: 'EC'; readonly crv: 'P-256' | 'P-384' | 'P-521' }
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519' };

const generatePair = promisify(generateKeyPair);

function rsaForHash(bits: string): KeySpec {
  return { kty: 'RSA', modulusLength: bits === '512' ? 4096 : bits === '384' ? 3072 : 2048 };
}

/** The key an elastic key's algorithm needs. */
export function keySpecFor(algorithm: KeyAlgorithm): KeySpec {
  if (algorithm.use === 'sig') {
    const bits = algorithm.alg.slice(2);
    if (algorithm.alg === 'EdDSA') return { kty: 'OKP', crv: 'Ed25519' };
    if (algorithm.alg.startsWith('HS')) return { kty: 'oct', bytes: Number(bits) / 8 };
    if (algorithm.alg.startsWith('ES')) {
      return { kty: 'EC', crv: bits === '256' ? 'P-256' : bits === '384' ? 'P-384' : 'P-521' };
    }
    return rsaForHash(bits);
  }
  const { alg, enc } = algorithm;
  if (alg === 'dir') return { kty: 'oct', bytes: contentKeyBytes(enc) };
  if (alg.startsWith('ECDH-ES')) return { kty: 'EC', crv: 'P-256' };
  if (alg.startsWith('RSA-OAEP')) return rsaForHash(alg === 'RSA-OAEP' ? '256' : alg.slice('RSA-OAEP-'.length));
  return { kty: 'oct', bytes: Number(alg.slice(1, 4)) / 8 };
}

/** Data key names accepted by `generate?alg=` (kms.md). */
const DATA_KEY_SPECS: Record<string, KeySpec> = {
  'AES-128': { kty: 'oct', bytes: 16 },
  'AES-192': { kty: 'oct', bytes: 24 },
  'AES-256': { kty: 'oct', bytes: 32 },
  'HMAC-256': { kty: 'oct', bytes: 32 },
  'HMAC-384': { kty: 'oct', bytes: 48 },
  'HMAC-512': { kty: 'oct', bytes: 64 },
  'RSA-2048': { kty: 'RSA', modulusLength: 2048 },
  'RSA-3072': { kty: 'RSA', modulusLength: 3072 },
  'RSA-4096': { kty: 'RSA', modulusLength: 4096 },
  'EC-P256': { kty: 'EC', crv: 'P-256' },
  'EC-P384': { kty: 'EC', crv: 'P-384' },
  'EC-P521': { kty: 'EC', crv: 'P-521' },
  'OKP-Ed25519': { kty: 'OKP', crv: 'Ed25519' },
};
export const DATA_KEY_ALGORITHMS = Object.keys(DATA_KEY_SPECS);

export function dataKeySpec(name: string): KeySpec {
  const spec = DATA_KEY_SPECS[name];
  if (!spec) {
    throw new AlgorithmUnsupportedError(`Unknown data key "${name}": use one of ${DATA_KEY_ALGORITHMS.join(', ')}.`);
  }
  return spec;
}

async function generatePrivateKey(spec: Exclude<KeySpec, { kty: 'oct' }>): Promise<KeyObject> {
  if (spec.kty === 'RSA') return (await generatePair('rsa', { modulusLength: spec.modulusLength })).privateKey;
  if (spec.kty === 'EC') return (await generatePair('ec', { namedCurve: spec.crv })).privateKey;
  return (await generatePair('ed25519', {})).privateKey;
}

/** A fresh private (or secret) JWK of the given shape, with `kid` and optional `alg`/`use`. */
export async function generateJwk(
  spec: KeySpec,
  header: { kid: string; alg?: string; use?: 'enc' | 'sig' },
): Promise<JWK> {
  const material: JWK =
    spec.kty === 'oct'
      ? { kty: 'oct', k: randomBytes(spec.bytes).toString('base64url') }
      : ((await generatePrivateKey(spec)).export({ format: 'jwk' }) as JWK);
  return { ...material, ...header };
}

const PRIVATE_MEMBERS: ReadonlySet<string> = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'key_ops']);

/** True when the JWK carries private or secret members (`d`, the RSA primes, `k`, ...). */
export function hasPrivateMembers(jwk: Record<string, unknown>): boolean {
  return Object.keys(jwk).some((member) => member !== 'key_ops' && PRIVATE_MEMBERS.has(member));
}

/** The public half of an asymmetric JWK, or undefined for a secret (oct) key. */
export function publicJwk(jwk: JWK): JWK | undefined {
  if (jwk.kty === 'oct') return undefined;
  return Object.fromEntries(Object.entries(jwk).filter(([member]) => !PRIVATE_MEMBERS.has(member))) as JWK;
}

function specMatches(jwk: JWK, spec: KeySpec): boolean {
  if (jwk.kty !== spec.kty) return false;
  if (spec.kty === 'oct') return Buffer.from(String(jwk.k ?? ''), 'base64url').length === spec.bytes;
  if (spec.kty === 'RSA') {
    return (createPublicKey({ key: jwk, format: 'jwk' }).asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  }
  return jwk.crv === spec.crv;
}

function expectedShape(spec: KeySpec): string {
  if (spec.kty === 'oct') return `oct of ${spec.bytes} bytes`;
  return spec.kty === 'RSA' ? 'RSA ≥ 2048 bits' : `${spec.kty} ${spec.crv}`;
}

function asJwkObject(input: unknown): JWK {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidJwkError('jwk must be a JSON object.');
  }
  return input as JWK;
}

/**
 * Checks a public JWK offered for import as a verify/encrypt-only version: asymmetric, no private
 * members, a valid public key of the shape the elastic key's algorithm needs. Returns a clean copy
 * without `kid`/`alg`/`use`/`key_ops`.
 */
export function validateImportedPublicJwk(input: unknown, spec: KeySpec): JWK {
  const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...material } = asJwkObject(input);
  if (material.kty === 'oct') throw new InvalidJwkError('A secret (oct) key has no public part to import.');
  if (hasPrivateMembers(material)) throw new InvalidJwkError('The JWK must be a public key (no private members).');
  try {
    createPublicKey({ key: material, format: 'jwk' });
  } catch {
    throw new InvalidJwkError('The JWK is not a valid public key.');
  }
  if (!specMatches(material, spec)) {
    throw new InvalidJwkError(`The JWK does not fit this elastic key's algorithm: expected ${expectedShape(spec)}.`);
  }
  return material;
}

const PAIRWISE_PROBE = Buffer.from('cryptoutil pairwise consistency test');

/**
 * Node accepts a private JWK whose public members belong to another key (an EC `x`/`y` next to another
 * key's `d`); the KMS would then publish a public key its signatures do not verify with. A signature by
 * the private key, checked with the public members alone, proves they belong together.
 */
function assertPairwiseConsistent(material: JWK, privateKey: KeyObject): void {
  const digest = material.kty === 'OKP' ? null : 'sha256';
  let consistent = false;
  try {
    const publicKey = createPublicKey({ key: publicJwk(material) as JWK, format: 'jwk' });
    consistent = verify(digest, PAIRWISE_PROBE, publicKey, sign(digest, PAIRWISE_PROBE, privateKey));
  } catch {
    consistent = false;
  }
  if (!consistent) throw new InvalidJwkError('The public members of the JWK do not belong to its private key.');
}

/**
 * Checks a JWK offered for import: well-formed, private (a public-only key cannot decrypt or sign),
 * and of the shape the elastic key's algorithm needs. Returns a clean copy without `kid`/`alg`/`use`.
 */
export function validateImportedJwk(input: unknown, spec: KeySpec): JWK {
  const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...material } = asJwkObject(input);
  if (material.kty === 'oct') {
    if (typeof material.k !== 'string' || !/^[A-Za-z0-9_-]+$/.test(material.k)) {
      throw new InvalidJwkError('An oct JWK needs a base64url "k".');
    }
  } else {
    if (typeof material.d !== 'string') throw new InvalidJwkError('The JWK must be a private key (member "d").');
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: material, format: 'jwk' });
    } catch {
      throw new InvalidJwkError('The JWK is not a valid private key.');
    }
    assertPairwiseConsistent(material, privateKey);
  }
  if (!specMatches(material, spec)) {
    throw new InvalidJwkError(`The JWK does not fit this elastic key's algorithm: expected ${expectedShape(spec)}.`);
  }
  return material;
}
