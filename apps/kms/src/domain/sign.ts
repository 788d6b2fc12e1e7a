/** Sign: active signing key → latest usable material key → JWS compact (`kid` = material key id). */
import { countCryptoOperation } from './crypto-metrics.js';
import { signJws } from '@cryptoutil/jose-authority';
import { signingKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { usableMaterial } from './material-key.js';

export async function sign(ctx: KmsContext, elasticKeyId: string, payload: Uint8Array): Promise<string> {
  const { key, algorithm } = await signingKey(ctx, elasticKeyId);
  const material = await usableMaterial(ctx, key);
  const jws = await signJws(payload, material.jwk, { alg: algorithm.alg, kid: material.record.id });
  countCryptoOperation('sign', key.algorithm);
  return jws;
}
