/**
 * Decrypt: the JWE's `kid` picks the material key of this elastic key (so data made before a rotation
 * still decrypts); a JWE of another elastic key, a revoked version or another context is refused.
 * `decryptorFor` checks the elastic key once and unwraps each version once, for batches and rewraps.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { InvalidJweError, decryptJwe, jweHeader } from '@cryptoutil/jose-authority';
import { encryptionKey, type EncryptionKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { materialForKid, materialsByKid } from './material-key.js';

export interface Decryption {
  plaintext: Uint8Array;
  /** The content type the JWE declares (`jwk+json` for a data key), kept by a rewrap. */
  cty?: string;
}

/** An elastic key ready to decrypt many JWEs, each with the version its `kid` names. */
export interface Decryptor {
  decrypt(jwe: string, context?: string): Promise<Decryption>;
}

export function decryptorFor(ctx: KmsContext, { key, algorithm }: EncryptionKey): Decryptor {
  const material = materialsByKid((kid) =>
    materialForKid(ctx, key, kid, (detail) => new InvalidJweError(`JWE: ${detail}`)),
  );
  return {
    async decrypt(jwe, context) {
      const { jwk } = await material(jweHeader(jwe).kid);
      const expected = { alg: algorithm.alg, enc: algorithm.enc, ...(context === undefined ? {} : { context }) };
      const { plaintext, header } = await decryptJwe(jwe, jwk, expected);
      return { plaintext, ...(typeof header.cty === 'string' ? { cty: header.cty } : {}) };
    },
  };
}

export async function decrypt(
  ctx: KmsContext,
  elasticKeyId: string,
  jwe: string,
  context?: string,
): Promise<Uint8Array> {
  const key = await encryptionKey(ctx, elasticKeyId);
  const { plaintext } = await decryptorFor(ctx, key).decrypt(jwe, context);
  countCryptoOperation('decrypt', key.key.algorithm);
  return plaintext;
}
