/**
 * Turns JWKs into keys `jose` can use, once: imports are cached per JWK object (and algorithm), so a
 * caller that keeps its unwrapped JWKs in an LRU pays the WebCrypto import only on a cache miss.
 */
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { AlgorithmUnsupportedError } from './errors.js';
import { publicJwk } from './keys.js';

export type JoseKey = CryptoKey | Uint8Array;

const imported = new WeakMap<JWK, Map<string, Promise<JoseKey>>>();

/** Imports `jwk` for `alg`; with `publicOnly`, the public half of an asymmetric key (for encrypt/verify). */
export function importJoseKey(jwk: JWK, alg: string, publicOnly = false): Promise<JoseKey> {
  let perAlg = imported.get(jwk);
  if (!perAlg) {
    perAlg = new Map();
    imported.set(jwk, perAlg);
  }
  const cacheKey = `${alg}:${publicOnly ? 'public' : 'private'}`;
  let key = perAlg.get(cacheKey);
  if (!key) {
    const source = publicOnly ? (publicJwk(jwk) ?? jwk) : jwk;
    const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ...material } = source;
    key = importJWK({ ...material, ext: false }, alg).catch((cause: unknown) => {
      perAlg.delete(cacheKey);
      throw new AlgorithmUnsupportedError(`The key does not fit algorithm ${alg}.`, { cause });
    });
    perAlg.set(cacheKey, key);
  }
  return key;
}
