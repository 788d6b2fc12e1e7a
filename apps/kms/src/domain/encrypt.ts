/**
 * Encrypt: active encryption key → latest usable version (or the one asked for), one encryption taken
 * from its max_encryptions budget → JWE compact (`kid` = material key id). `encryptorFor` does the first
 * steps once, so a batch or a rewrap encrypts many plaintexts with them (each still takes its count).
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { encryptJwe } from '@cryptoutil/jose-authority';
import { encryptionKey, type EncryptionKey } from './crypto-key.js';
import { effectiveMaxEncryptions } from './encryption-usage.js';
import type { KmsContext } from './kms-context.js';
import { encryptionMaterial } from './version-selection.js';

export interface EncryptOptions {
  context?: string;
  /** Content type of the plaintext, e.g. `jwk+json` for a data key. */
  cty?: string;
}

/** An elastic key ready to encrypt: checked and its version unwrapped once. */
export interface Encryptor {
  encrypt(plaintext: Uint8Array, options?: EncryptOptions): Promise<string>;
}

export async function encryptorFor(
  ctx: KmsContext,
  { key, algorithm }: EncryptionKey,
  choice: { version?: number } = {},
): Promise<Encryptor> {
  const max = effectiveMaxEncryptions(key.maxEncryptions, algorithm);
  // Choosing takes the first encryption's count; every further one takes its own, and when the version
  // has made its last, the next version is chosen (rotated) as for a single encrypt.
  let material = await encryptionMaterial(ctx, key, algorithm, choice.version);
  let counted = true;
  return {
    async encrypt(plaintext, options = {}) {
      if (counted) counted = false;
      else if (max !== null) {
        const taken = await ctx.usage.take({ db: ctx.db, tables: ctx.tables, materialKeyId: material.record.id }, max);
        if (!taken) material = await encryptionMaterial(ctx, key, algorithm, choice.version);
      }
      return encryptJwe(plaintext, material.jwk, {
        alg: algorithm.alg,
        enc: algorithm.enc,
        kid: material.record.id,
        ...(options.context === undefined ? {} : { context: options.context }),
        ...(options.cty === undefined ? {} : { cty: options.cty }),
      });
    },
  };
}

export async function encrypt(
  ctx: KmsContext,
  elasticKeyId: string,
  plaintext: Uint8Array,
  options: EncryptOptions & { operation?: 'encrypt' | 'generate'; version?: number } = {},
): Promise<string> {
  const key = await encryptionKey(ctx, elasticKeyId);
  const chosen = options.version === undefined ? {} : { version: options.version };
  const jwe = await (await encryptorFor(ctx, key, chosen)).encrypt(plaintext, options);
  countCryptoOperation(options.operation ?? 'encrypt', key.key.algorithm);
  return jwe;
}
