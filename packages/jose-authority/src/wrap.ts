/**
 * Key wrapping for the barrier: a JWK is stored as a JWE (`dir` + A256GCM, `cty: jwk+json`) under its
 * parent key, whose `kid` names the parent so unwrapping knows which key to load.
 */
import type { JWK } from 'jose';
import { InvalidJweError } from './errors.js';
import { decryptJwe, encryptJwe } from './jwe.js';

const WRAP = { alg: 'dir', enc: 'A256GCM' } as const;

export async function wrapJwk(jwk: JWK, wrappingKey: JWK & { kid: string }): Promise<string> {
  const plaintext = new TextEncoder().encode(JSON.stringify(jwk));
  return encryptJwe(plaintext, wrappingKey, { ...WRAP, kid: wrappingKey.kid, cty: 'jwk+json' });
}

export async function unwrapJwk(jwe: string, wrappingKey: JWK): Promise<JWK> {
  const { plaintext, header } = await decryptJwe(jwe, wrappingKey, WRAP);
  if (header.cty !== 'jwk+json') throw new InvalidJweError('The wrapped value is not a JWK.');
  return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
}
