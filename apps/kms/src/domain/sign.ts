/** Sign: active signing key → latest usable version (or the one asked for) → JWS compact (`kid` = material key id). */
import { countCryptoOperation } from './crypto-metrics.js';
import { signJws } from '@cryptoutil/jose-authority';
import { signingKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { signingMaterial } from './version-selection.js';

export async function sign(
  ctx: KmsContext,
  elasticKeyId: string,
  payload: Uint8Array,
  options: { version?: number } = {},
): Promise<string> {
  const { key, algorithm } = await signingKey(ctx, elasticKeyId);
  const material = await signingMaterial(ctx, key, options.version);
  const jws = await signJws(payload, material.jwk, { alg: algorithm.alg, kid: material.record.id });
  countCryptoOperation('sign', key.algorithm);
  return jws;
}
