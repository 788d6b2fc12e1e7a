/**
 * Batches (kms.md "Beyond the anchors"): many items of one operation on one elastic key in one call. The
 * elastic key (existence, tenant, status, use) and its material keys are resolved once per call, so a refusal
 * of the key fails the whole call; then each item succeeds or fails alone and results keep the items' order.
 * An item's own client error (a bad JWE, a wrong context, a bad signature, a revoked version) is that item's
 * result; anything else (the database gone) fails the call, since it says nothing about the item.
 */
import { AppError, ValidationError } from '@cryptoutil/infra';
import { encryptionKey, signingKey } from './crypto-key.js';
import { countCryptoOperation, type CryptoOperation } from './crypto-metrics.js';
import { decryptorFor } from './decrypt.js';
import { encryptorFor } from './encrypt.js';
import type { KmsContext } from './kms-context.js';
import { rewrapperFor } from './rewrap.js';
import { signerFor } from './sign.js';
import { verifierFor, type Verification } from './verify.js';

export const MAX_BATCH_ITEMS = 1000;

/** Items in flight at once: enough to keep the crypto thread pool busy, few enough to stay fair to other calls. */
const CONCURRENCY = 16;

export type BatchResult<T> = { ok: true; value: T } | { ok: false; error: AppError };

export interface EncryptItem {
  plaintext: Uint8Array;
  context?: string;
}

export interface JweItem {
  jwe: string;
  context?: string;
}

export const batchTooLarge = (items: number): ValidationError =>
  new ValidationError(`A batch holds at most ${MAX_BATCH_ITEMS} items; this one has ${items}.`, {
    code: 'batch_too_large',
    extensions: { field: 'items', max_items: MAX_BATCH_ITEMS },
  });

function assertBatchSize(items: readonly unknown[]): void {
  if (items.length > MAX_BATCH_ITEMS) throw batchTooLarge(items.length);
}

/** An item's own failure: a client error about that item (4xx). Anything else is the call's failure. */
function itemError(error: unknown): AppError {
  if (error instanceof AppError && error.status < 500) return error;
  throw error;
}

/** Runs `work` on every item, a few at a time, and returns each outcome at its item's position. */
async function eachItem<I, T>(items: readonly I[], work: (item: I) => Promise<T>): Promise<BatchResult<T>[]> {
  const results = new Array<BatchResult<T>>(items.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) {
      try {
        results[index] = { ok: true, value: await work(items[index] as I) };
      } catch (error) {
        results[index] = { ok: false, error: itemError(error) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return results;
}

function counted<T>(results: BatchResult<T>[], operation: CryptoOperation, algorithm: string): BatchResult<T>[] {
  countCryptoOperation(operation, algorithm, results.filter((result) => result.ok).length);
  return results;
}

/**
 * For callers that parse items first (base64 data): runs `run` on the items that parsed and puts every
 * result back at its item's position; an item that did not parse keeps its error.
 */
export async function withParsedItems<I, T>(
  parsed: readonly BatchResult<I>[],
  run: (items: I[]) => Promise<BatchResult<T>[]>,
): Promise<BatchResult<T>[]> {
  const good = parsed.flatMap((item) => (item.ok ? [item.value] : []));
  // Run even with no good item: the elastic key is still checked (a missing key is a 404, not 200 of errors).
  const done = await run(good);
  let position = 0;
  return parsed.map((item) => (item.ok ? (done[position++] as BatchResult<T>) : item));
}

export async function encryptBatch(
  ctx: KmsContext,
  elasticKeyId: string,
  items: readonly EncryptItem[],
): Promise<BatchResult<string>[]> {
  assertBatchSize(items);
  const key = await encryptionKey(ctx, elasticKeyId);
  const encryptor = await encryptorFor(ctx, key);
  const results = await eachItem(items, ({ plaintext, context }) =>
    encryptor.encrypt(plaintext, context === undefined ? {} : { context }),
  );
  return counted(results, 'encrypt', key.key.algorithm);
}

export async function decryptBatch(
  ctx: KmsContext,
  elasticKeyId: string,
  items: readonly JweItem[],
): Promise<BatchResult<Uint8Array>[]> {
  assertBatchSize(items);
  const key = await encryptionKey(ctx, elasticKeyId);
  const decryptor = decryptorFor(ctx, key);
  const results = await eachItem(items, async ({ jwe, context }) => (await decryptor.decrypt(jwe, context)).plaintext);
  return counted(results, 'decrypt', key.key.algorithm);
}

export async function rewrapBatch(
  ctx: KmsContext,
  elasticKeyId: string,
  items: readonly JweItem[],
): Promise<BatchResult<string>[]> {
  assertBatchSize(items);
  const key = await encryptionKey(ctx, elasticKeyId);
  const rewrapper = await rewrapperFor(ctx, key);
  const results = await eachItem(items, ({ jwe, context }) =>
    rewrapper.rewrap(jwe, context === undefined ? {} : { context }),
  );
  return counted(results, 'rewrap', key.key.algorithm);
}

export async function signBatch(
  ctx: KmsContext,
  elasticKeyId: string,
  items: readonly { payload: Uint8Array }[],
): Promise<BatchResult<string>[]> {
  assertBatchSize(items);
  const key = await signingKey(ctx, elasticKeyId);
  const signer = await signerFor(ctx, key);
  const results = await eachItem(items, ({ payload }) => signer.sign(payload));
  return counted(results, 'sign', key.key.algorithm);
}

export async function verifyBatch(
  ctx: KmsContext,
  elasticKeyId: string,
  items: readonly { jws: string }[],
): Promise<BatchResult<Verification>[]> {
  assertBatchSize(items);
  const key = await signingKey(ctx, elasticKeyId);
  const verifier = verifierFor(ctx, key);
  const results = await eachItem(items, ({ jws }) => verifier.verify(jws));
  return counted(results, 'verify', key.key.algorithm);
}
