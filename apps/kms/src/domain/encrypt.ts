/**
 * Encrypt: active encryption key → latest usable material key → JWE compact (`kid` = material key id).
 * `encryptor` does the first two steps once, so a batch or a rewrap encrypts many plaintexts with them.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { encryptJwe } from '@cryptoutil/jose-authority';
import { encryptionKey, type EncryptionKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { usableMaterial } from './material-key.js';

export interface EncryptOptions {
  context?: string;
  /** Content type of the plaintext, e.g. `jwk+json` for a data key. */
  cty?: string;
}

/** An elastic key ready to encrypt: checked and its latest material key unwrapped once. */
export interface Encryptor {
  encrypt(plaintext: Uint8Array, options?: EncryptOptions): Promise<string>;
}

export async function encryptorFor(ctx: KmsContext, { key, algorithm }: EncryptionKey): Promise<Encryptor> {
  const material = await usableMaterial(ctx, key, undefined, 'public');
  return {
    encrypt: (plaintext, options = {}) =>
      encryptJwe(plaintext, material.jwk, {
        alg: algorithm.alg,
        enc: algorithm.enc,
        kid: material.record.id,
        ...(options.context === undefined ? {} : { context: options.context }),
        ...(options.cty === undefined ? {} : { cty: options.cty }),
      }),
  };
}

export async function encryptor(ctx: KmsContext, elasticKeyId: string): Promise<Encryptor> {
  return encryptorFor(ctx, await encryptionKey(ctx, elasticKeyId));
}

export async function encrypt(
  ctx: KmsContext,
  elasticKeyId: string,
  plaintext: Uint8Array,
  options: EncryptOptions & { operation?: 'encrypt' | 'generate' } = {},
): Promise<string> {
  const key = await encryptionKey(ctx, elasticKeyId);
  const jwe = await (await encryptorFor(ctx, key)).encrypt(plaintext, options);
  countCryptoOperation(options.operation ?? 'encrypt', key.key.algorithm);
  return jwe;
}
