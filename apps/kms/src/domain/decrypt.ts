/**
 * Decrypt: the JWE's `kid` picks the material key of this elastic key (so data made before a rotation
 * still decrypts); a JWE of another elastic key, a revoked version or another context is refused.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { InvalidJweError, decryptJwe, jweHeader } from '@cryptoutil/jose-authority';
import { encryptionKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { materialForKid } from './material-key.js';

export async function decrypt(
  ctx: KmsContext,
  elasticKeyId: string,
  jwe: string,
  context?: string,
): Promise<Uint8Array> {
  const { key, algorithm } = await encryptionKey(ctx, elasticKeyId);
  const material = await materialForKid(
    ctx,
    key,
    jweHeader(jwe).kid,
    (detail) => new InvalidJweError(`JWE: ${detail}`),
  );
  const expected = { alg: algorithm.alg, enc: algorithm.enc, ...(context === undefined ? {} : { context }) };
  const { plaintext } = await decryptJwe(jwe, material.jwk, expected);
  countCryptoOperation('decrypt', key.algorithm);
  return plaintext;
}
