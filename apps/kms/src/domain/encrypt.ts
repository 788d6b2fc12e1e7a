/**
 * Encrypt: active encryption key → latest usable version (or the one asked for), one encryption taken
 * from its max_encryptions budget → JWE compact (`kid` = material key id).
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { encryptJwe } from '@cryptoutil/jose-authority';
import { encryptionKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { encryptionMaterial } from './version-selection.js';

export async function encrypt(
  ctx: KmsContext,
  elasticKeyId: string,
  plaintext: Uint8Array,
  options: { context?: string; cty?: string; operation?: 'encrypt' | 'generate'; version?: number } = {},
): Promise<string> {
  const { key, algorithm } = await encryptionKey(ctx, elasticKeyId);
  const material = await encryptionMaterial(ctx, key, algorithm, options.version);
  const jwe = await encryptJwe(plaintext, material.jwk, {
    alg: algorithm.alg,
    enc: algorithm.enc,
    kid: material.record.id,
    ...(options.context === undefined ? {} : { context: options.context }),
    ...(options.cty === undefined ? {} : { cty: options.cty }),
  });
  countCryptoOperation(options.operation ?? 'encrypt', key.algorithm);
  return jwe;
}
