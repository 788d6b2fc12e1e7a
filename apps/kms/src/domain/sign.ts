/**
 * Sign: active signing key → latest usable material key → JWS compact (`kid` = material key id).
 * `signer` does the first two steps once, for batches.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { signJws } from '@cryptoutil/jose-authority';
import { signingKey, type SigningKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { usableMaterial } from './material-key.js';

/** An elastic key ready to sign: checked and its latest material key unwrapped once. */
export interface Signer {
  sign(payload: Uint8Array): Promise<string>;
}

export async function signerFor(ctx: KmsContext, { key, algorithm }: SigningKey): Promise<Signer> {
  const material = await usableMaterial(ctx, key);
  return { sign: (payload) => signJws(payload, material.jwk, { alg: algorithm.alg, kid: material.record.id }) };
}

export async function signer(ctx: KmsContext, elasticKeyId: string): Promise<Signer> {
  return signerFor(ctx, await signingKey(ctx, elasticKeyId));
}

export async function sign(ctx: KmsContext, elasticKeyId: string, payload: Uint8Array): Promise<string> {
  const key = await signingKey(ctx, elasticKeyId);
  const jws = await (await signerFor(ctx, key)).sign(payload);
  countCryptoOperation('sign', key.key.algorithm);
  return jws;
}
