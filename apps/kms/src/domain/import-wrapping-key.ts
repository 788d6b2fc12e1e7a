/**
 * The import wrapping key (kms.md "Import with wrapping (BYOK)"): an RSA-4096 key pair per tenant whose
 * public half callers wrap their key to (JWE RSA-OAEP-256 / A256GCM), so private and secret material
 * never crosses the wire in clear. Its private half lives only under the barrier, like material keys.
 *
 * One key per tenant, not per KMS: tenants are isolated at the database level (their own schema), so a
 * tenant's import path never depends on, or reveals anything about, another tenant's keys.
 *
 * The key is made on first use: RSA-4096 generation takes seconds and must not delay start-up. Concurrent
 * first uses in one process share one generation; instances on one database each insert-if-absent and
 * read back, so every caller ends with the same key.
 */
import { uuidv7 } from '@cryptoutil/infra';
import { InvalidJweError, decryptJwe, generateJwk, jweHeader, publicJwk, type JWK } from '@cryptoutil/jose-authority';
import {
  currentImportWrappingKey,
  findImportWrappingKey,
  insertImportWrappingKeyIfAbsent,
  type ImportWrappingKeyRecord,
} from '../data/import-wrapping-key-repository.js';
import { wrappedKeyAlgorithmUnsupported, wrappedKeyInvalid, wrappingKeyUnknown } from './errors.js';
import type { KmsContext } from './kms-context.js';

/** What a wrapped key must use: RSA-OAEP-256 to the wrapping key, AES-256-GCM for the JWK itself. */
export const IMPORT_WRAPPING = { alg: 'RSA-OAEP-256', enc: 'A256GCM' } as const;
const MODULUS_LENGTH = 4096;
const FIRST_GENERATION = 1;

/** Per tenant context: the key once known, or the generation in flight. */
const current = new WeakMap<KmsContext, Promise<ImportWrappingKeyRecord>>();

async function createFirstKey(ctx: KmsContext): Promise<ImportWrappingKeyRecord> {
  const id = uuidv7();
  const jwk = await generateJwk(
    { kty: 'RSA', modulusLength: MODULUS_LENGTH },
    { kid: id, alg: IMPORT_WRAPPING.alg, use: 'enc' },
  );
  const { contentKeyId, jwe } = await ctx.barrier.wrap(jwk);
  await insertImportWrappingKeyIfAbsent(ctx.db, ctx.tables, {
    id,
    generation: FIRST_GENERATION,
    jwe,
    clearPublic: JSON.stringify(publicJwk(jwk)),
    createdAt: ctx.now().toISOString(),
    contentKeyId,
  });
  // Another instance may have won the insert: its key is the one.
  const stored = await currentImportWrappingKey(ctx.db, ctx.tables);
  if (!stored) throw new Error('the import wrapping key was not stored');
  return stored;
}

async function loadOrCreate(ctx: KmsContext): Promise<ImportWrappingKeyRecord> {
  return (await currentImportWrappingKey(ctx.db, ctx.tables)) ?? createFirstKey(ctx);
}

/** The tenant's import wrapping key, created on first use. */
export function importWrappingKey(ctx: KmsContext): Promise<ImportWrappingKeyRecord> {
  let key = current.get(ctx);
  if (!key) {
    key = loadOrCreate(ctx);
    current.set(ctx, key);
    key.catch(() => current.delete(ctx));
  }
  return key;
}

/** The public JWK callers wrap to (`alg: RSA-OAEP-256`, `use: enc`, `kid`). */
export async function importWrappingPublicJwk(ctx: KmsContext): Promise<JWK> {
  return JSON.parse((await importWrappingKey(ctx)).clearPublic) as JWK;
}

/**
 * Decrypts a wrapped key (a JWE to this tenant's import wrapping key) and returns its plaintext parsed
 * as JSON, for the caller to validate as a JWK. The plaintext bytes are zeroed once parsed.
 */
export async function unwrapImportedKey(ctx: KmsContext, jwe: string): Promise<unknown> {
  const header = jweHeader(jwe);
  if (header.alg !== IMPORT_WRAPPING.alg || header.enc !== IMPORT_WRAPPING.enc) {
    throw wrappedKeyAlgorithmUnsupported();
  }
  const key = typeof header.kid === 'string' ? await findImportWrappingKey(ctx.db, ctx.tables, header.kid) : undefined;
  if (!key) throw wrappingKeyUnknown();
  // Cached by the barrier under the wrapping key's id (a UUIDv7, never a material key's).
  const privateJwk = await ctx.barrier.unwrap(key.id, key.jwe);
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await decryptJwe(jwe, privateJwk, IMPORT_WRAPPING));
  } catch (error) {
    if (error instanceof InvalidJweError) {
      throw wrappedKeyInvalid(
        'It does not decrypt with the import wrapping key (altered, or encrypted to another key).',
      );
    }
    throw error;
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as unknown;
  } catch {
    throw wrappedKeyInvalid('Its plaintext is not a JWK (a JSON object).');
  } finally {
    plaintext.fill(0);
  }
}
