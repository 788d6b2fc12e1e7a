/**
 * Turns JWKs into keys `jose` can use, once: imports are cached per JWK object (and algorithm), so a
 * caller that keeps its unwrapped JWKs in an LRU pays the WebCrypto import only on a cache miss.
 */
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { AlgorithmUnsupportedError } from './errors.js';
import { publicJwk } from './keys.js';

export type JoseKey = CryptoKey | Uint8Array;

const imported = new WeakMap<JWK, Map<string, Promise<JoseKey>>>();

/**
 * `jose` takes symmetric keys as bytes and imports them into WebCrypto on every operation; where a
 * WebCrypto key serves (AES key wrap, and `dir` with AES-GCM), it is imported here once instead.
 */
function nativeSymmetricKey(bytes: Uint8Array, alg: string, enc: string | undefined): Promise<JoseKey> {
  if (/^A(128|192|256)KW$/.test(alg)) {
    return crypto.subtle.importKey('raw', bytes, 'AES-KW', false, ['wrapKey', 'unwrapKey']);
  }
  if (
    alg === 'dir' &&
    enc !== undefined &&
    /^A(128|192|256)GCM$/.test(enc) &&
    bytes.length * 8 === Number(enc.slice(1, 4))
  ) {
    return crypto.subtle.importKey('raw', bytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
  }
  return Promise.resolve(bytes);
}

/**
 * Imports `jwk` for `alg` (and, for `dir`, the content encryption `enc`); with `publicOnly`, the public
 * half of an asymmetric key (for encrypt/verify).
 */
export function importJoseKey(jwk: JWK, alg: string, publicOnly = false, enc?: string): Promise<JoseKey> {
  let perAlg = imported.get(jwk);
  if (!perAlg) {
    perAlg = new Map();
    imported.set(jwk, perAlg);
  }
  const cacheKey = `${alg}:${enc ?? ''}:${publicOnly ? 'public' : 'private'}`;
  let key = perAlg.get(cacheKey);
  if (!key) {
    const source = publicOnly ? (publicJwk(jwk) ?? jwk) : jwk;
    const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...material } = source;
    key = importJWK({ ...material, ext: false }, alg)
      .then((imported) => (imported instanceof Uint8Array ? nativeSymmetricKey(imported, alg, enc) : imported))
      .catch((cause: unknown) => {
        perAlg.delete(cacheKey);
        throw new AlgorithmUnsupportedError(`The key does not fit algorithm ${alg}.`, { cause });
      });
    perAlg.set(cacheKey, key);
  }
  return key;
}
