/**
 * `POST /elastickey/{id}/{encrypt|decrypt|rewrap|sign|verify}/batch` (kms.md "Beyond the anchors"): JSON
 * items in, JSON results out in the same order, each a result or that item's problem object. The call fails
 * as a whole only when the body is not a batch (not JSON, wrong shape, unknown field, no item, more than
 * 1,000 items) or the elastic key refuses the operation; an item's bad base64url, bad JWE or bad signature
 * is that item's error. Each item is one audit event (`recordBatchItems`).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ValidationError, currentRequestContext, parseBody, problemBody, type AppError } from '@cryptoutil/infra';
import {
  MAX_BATCH_ITEMS,
  batchTooLarge,
  decryptBatch,
  encryptBatch,
  rewrapBatch,
  signBatch,
  verifyBatch,
  withParsedItems,
  type BatchResult,
} from '../domain/batch.js';
import { recordBatchItems } from './audit-trail.js';
import { tenantContext } from './tenant-selection.js';
import { MAX_CONTEXT_LENGTH, base64urlBytes, uuidParam } from './validation.js';

/** The longest `reference` a caller may give an item (it is echoed in the item's result). */
const MAX_REFERENCE_LENGTH = 256;

const reference = z.string().max(MAX_REFERENCE_LENGTH).optional();
const context = z.string().optional();
const items = <T extends z.ZodRawShape>(item: T) =>
  z.strictObject({ items: z.array(z.strictObject({ ...item, reference })).min(1) });

const dataItems = items({ data: z.string(), context });
const jweItems = items({ jwe: z.string(), context });
const signItems = items({ data: z.string() });
const jwsItems = items({ jws: z.string() });

/** The body as a batch: more than the item limit is `batch_too_large`, any other bad shape `invalid_body`. */
function parseBatch<T>(schema: z.ZodType<T>, req: Request): T {
  const body = req.body as { items?: unknown } | undefined;
  if (req.is('application/json') && Array.isArray(body?.items) && body.items.length > MAX_BATCH_ITEMS) {
    throw batchTooLarge(body.items.length);
  }
  if (req.query.context !== undefined) {
    throw new ValidationError('A batch takes the context in each item, not in the query.', {
      code: 'invalid_query',
      extensions: { field: 'context' },
    });
  }
  return parseBody(schema, req);
}

/** An item's input, or the item's own error if a field does not hold what it must. */
function parseItem<T>(parse: () => T): BatchResult<T> {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    if (error instanceof ValidationError) return { ok: false, error };
    throw error;
  }
}

function checkedContext(value: string | undefined): { context?: string } {
  if (value === undefined) return {};
  if (value.length > MAX_CONTEXT_LENGTH) {
    throw new ValidationError(`context may have at most ${MAX_CONTEXT_LENGTH} characters.`, {
      code: 'invalid_item',
      extensions: { field: 'context' },
    });
  }
  return { context: value };
}

/** `{results}`: each item's reference (when it gave one) and its result or its problem object. */
function sendResults<T>(
  req: Request,
  res: Response,
  given: readonly { reference?: string | undefined }[],
  results: readonly BatchResult<T>[],
  present: (value: T) => Record<string, unknown>,
): void {
  recordBatchItems(
    res,
    results.map((result) => (result.ok ? null : result.error.code)),
  );
  const requestId = currentRequestContext()?.requestId;
  const options = { instance: req.originalUrl.split('?')[0] ?? '', ...(requestId ? { requestId } : {}) };
  const problem = (error: AppError) => problemBody(error, options);
  res.json({
    results: results.map((result, index) => {
      const ref = given[index]?.reference;
      return {
        ...(ref === undefined ? {} : { reference: ref }),
        ...(result.ok ? present(result.value) : { error: problem(result.error) }),
      };
    }),
  });
}

/** Base64url of plaintext bytes for the response, the bytes zeroed once encoded. */
function releasedBase64url(plaintext: Uint8Array): string {
  const text = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('base64url');
  plaintext.fill(0);
  return text;
}

export function cryptoBatchRouter(): Router {
  const router = Router();

  router.post('/elastickey/:elasticKeyId/encrypt/batch', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBatch(dataItems, req);
    const parsed = body.items.map((item) =>
      parseItem(() => ({ plaintext: base64urlBytes(item.data, 'data'), ...checkedContext(item.context) })),
    );
    const results = await withParsedItems(parsed, (good) => encryptBatch(ctx, id, good));
    sendResults(req, res, body.items, results, (jwe) => ({ jwe }));
  });

  router.post('/elastickey/:elasticKeyId/decrypt/batch', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBatch(jweItems, req);
    const parsed = body.items.map((item) =>
      parseItem(() => ({ jwe: item.jwe.trim(), ...checkedContext(item.context) })),
    );
    const results = await withParsedItems(parsed, (good) => decryptBatch(ctx, id, good));
    sendResults(req, res, body.items, results, (plaintext) => ({ data: releasedBase64url(plaintext) }));
  });

  router.post('/elastickey/:elasticKeyId/rewrap/batch', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBatch(jweItems, req);
    const parsed = body.items.map((item) =>
      parseItem(() => ({ jwe: item.jwe.trim(), ...checkedContext(item.context) })),
    );
    const results = await withParsedItems(parsed, (good) => rewrapBatch(ctx, id, good));
    sendResults(req, res, body.items, results, (jwe) => ({ jwe }));
  });

  router.post('/elastickey/:elasticKeyId/sign/batch', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBatch(signItems, req);
    const parsed = body.items.map((item) => parseItem(() => ({ payload: base64urlBytes(item.data, 'data') })));
    const results = await withParsedItems(parsed, (good) => signBatch(ctx, id, good));
    sendResults(req, res, body.items, results, (jws) => ({ jws }));
  });

  router.post('/elastickey/:elasticKeyId/verify/batch', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBatch(jwsItems, req);
    const results = await verifyBatch(
      ctx,
      id,
      body.items.map((item) => ({ jws: item.jws.trim() })),
    );
    sendResults(req, res, body.items, results, ({ valid, kid, payload }) => ({
      valid,
      kid,
      payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64url'),
    }));
  });

  return router;
}
