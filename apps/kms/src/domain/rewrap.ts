/**
 * Rewrap (kms.md "Beyond the anchors"): a JWE made with any allowed version of this elastic key becomes one
 * made with its latest version, under the same context and content type. It is the decrypt use case followed
 * by the encrypt use case, so it keeps every rule of both; the plaintext exists only in this process, between
 * the two steps, and is zeroed after. It is never returned, logged or audited.
 */
import { encryptionKey, type EncryptionKey } from './crypto-key.js';
import { countCryptoOperation } from './crypto-metrics.js';
import { decryptorFor } from './decrypt.js';
import { encryptorFor } from './encrypt.js';
import type { KmsContext } from './kms-context.js';

export interface RewrapOptions {
  /** The context the JWE was made with; the new JWE is bound to it too. */
  context?: string;
}

/** An elastic key ready to rewrap many JWEs: checked once, its latest and older versions unwrapped once. */
export interface Rewrapper {
  rewrap(jwe: string, options?: RewrapOptions): Promise<string>;
}

/** `choice.version`: rewrap to that version instead of the latest (Vault's `key_version`). */
export async function rewrapperFor(
  ctx: KmsContext,
  key: EncryptionKey,
  choice: { version?: number } = {},
): Promise<Rewrapper> {
  const decryptor = decryptorFor(ctx, key);
  const encryptor = await encryptorFor(ctx, key, choice);
  return {
    async rewrap(jwe, { context } = {}) {
      const { plaintext, cty } = await decryptor.decrypt(jwe, context);
      try {
        return await encryptor.encrypt(plaintext, {
          ...(context === undefined ? {} : { context }),
          ...(cty === undefined ? {} : { cty }),
        });
      } finally {
        plaintext.fill(0);
      }
    },
  };
}

export async function rewrap(
  ctx: KmsContext,
  elasticKeyId: string,
  jwe: string,
  options: RewrapOptions = {},
): Promise<string> {
  const key = await encryptionKey(ctx, elasticKeyId);
  const rewrapped = await (await rewrapperFor(ctx, key)).rewrap(jwe, options);
  countCryptoOperation('rewrap', key.key.algorithm);
  return rewrapped;
}
