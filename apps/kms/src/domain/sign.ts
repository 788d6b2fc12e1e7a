/**
 * Sign: active signing key → latest usable version (or the one asked for) → JWS compact (`kid` = material
 * key id). `signerFor` does the first two steps once, for batches.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { signJws } from '@cryptoutil/jose-authority';
import { signingKey, type SigningKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { signingMaterial } from './version-selection.js';

/** An elastic key ready to sign: checked and its version unwrapped once. */
export interface Signer {
  sign(payload: Uint8Array): Promise<string>;
}

export async function signerFor(
  ctx: KmsContext,
  { key, algorithm }: SigningKey,
  choice: { version?: number } = {},
): Promise<Signer> {
  const material = await signingMaterial(ctx, key, choice.version);
  return { sign: (payload) => signJws(payload, material.jwk, { alg: algorithm.alg, kid: material.record.id }) };
}

export async function sign(
  ctx: KmsContext,
  elasticKeyId: string,
  payload: Uint8Array,
  options: { version?: number } = {},
): Promise<string> {
  const key = await signingKey(ctx, elasticKeyId);
  const jws = await (await signerFor(ctx, key, options)).sign(payload);
  countCryptoOperation('sign', key.key.algorithm);
  return jws;
}
