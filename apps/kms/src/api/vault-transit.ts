/**
 * Vault Transit compatible router (kms.md "Beyond the anchors"), mounted at `/v1/transit`: Vault's paths,
 * bodies and `{"data": ...}` envelopes over the KMS's own use cases (translation in
 * `domain/vault-transit*.ts`). `X-Vault-Token` carries a credential the KMS already accepts and goes
 * through the same authentication, scopes and tenant rules as the native API; errors on this router
 * only are Vault-shaped `{"errors": [...]}` with Vault's status codes.
 */
import { randomUUID } from 'node:crypto';
import { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { NotFoundError, ValidationError, toAppError, type Logger } from '@cryptoutil/infra';
import { TokenValidationError } from '@cryptoutil/jose-authority';
import { batchStatus, type BatchResult } from '../domain/vault-transit.js';
import {
  transitDataKey,
  transitDecrypt,
  transitEncrypt,
  transitRewrap,
  transitSign,
  transitVerify,
} from '../domain/vault-transit-crypto.js';
import {
  createTransitKey,
  findTransitKey,
  rotateTransitKey,
  transitKeyInfo,
  transitKeyNotFound,
} from '../domain/vault-transit-keys.js';
import { OWN_ERROR_SHAPE } from './access.js';
import { tenantContext } from './tenant-selection.js';
import { hasBody } from './validation.js';

export const VAULT_TOKEN_HEADER = 'X-Vault-Token';

/**
 * The `Authorization` a Vault token stands for: a scheme given in full (`Bearer …`, `ApiKey …`, `Basic …`)
 * as it is, a JWT as a bearer token, `<id>.<secret>` as an API key, `user:password` as HTTP Basic.
 */
export function authorizationForVaultToken(token: string): string {
  if (/^(Bearer|ApiKey|Basic) +\S/i.test(token)) return token;
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) return `ApiKey ${token}`;
  if (!token.includes('.') && token.includes(':')) return `Basic ${Buffer.from(token, 'utf8').toString('base64')}`;
  return `Bearer ${token}`;
}

/**
 * Vault reads every request body as JSON whatever its content type (its Go client sends none, `curl -d`
 * sends a form type), so on this prefix a body is declared JSON before the app's body parsers run.
 */
export function vaultBodiesAreJson(): RequestHandler {
  return (req, _res, next) => {
    if (hasBody(req) && !req.is('application/json')) req.headers['content-type'] = 'application/json';
    next();
  };
}

/** Vault treats PUT as POST (its CLI writes with PUT): one method for the routes, access rules and audit. */
export function vaultPutIsPost(): RequestHandler {
  return (req, _res, next) => {
    if (req.method === 'PUT') req.method = 'POST';
    next();
  };
}

/** First on the router: Vault-shaped errors from here on, and `X-Vault-Token` as the request's credential. */
export function vaultTokenCredential(): RequestHandler {
  return (req, res, next) => {
    res.locals[OWN_ERROR_SHAPE] = true;
    const token = req.get(VAULT_TOKEN_HEADER)?.trim();
    if (token) req.headers.authorization = authorizationForVaultToken(token);
    next();
  };
}

/** Vault's response envelope; `warnings` as Vault words them (e.g. ignored parameters). */
function answer(res: Response, data: unknown, options: { status?: number; warnings?: string[] } = {}): void {
  const header = res.getHeader('X-Request-ID');
  res.status(options.status ?? 200).json({
    request_id: typeof header === 'string' ? header : randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: options.warnings && options.warnings.length > 0 ? options.warnings : null,
    auth: null,
  });
}

const base64Text = z.string().max(2_000_000);
const keyVersion = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(/^\d{1,9}$/)
    .transform(Number),
]);
const reference = z.string().max(1024).optional();
const context = z.string().max(4096).optional();
/** Refused when given, never silently ignored: their protection would not exist. */
const refusedText = (field: string, instead: string) =>
  z
    .string()
    .optional()
    .refine((value) => value === undefined || value === '', { message: `${field} is not supported; ${instead}` });
const noNonce = refusedText('nonce', 'every encryption uses a fresh random IV');
const noAssociatedData = refusedText('associated_data', 'use context, which is bound into the JWE header');
const batch = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'missing batch input to process').max(1000);
const partialFailure = z.number().int().min(1).max(599).optional();

const schemas = {
  createKey: z.object({
    type: z.string().default('aes256-gcm96'),
    derived: z.boolean().optional(),
    convergent_encryption: z.boolean().optional(),
    exportable: z.boolean().optional(),
    allow_plaintext_backup: z.boolean().optional(),
    auto_rotate_period: z.union([z.number(), z.string()]).optional(),
  }),
  encrypt: z.object({
    plaintext: base64Text.optional(),
    context,
    key_version: keyVersion.optional(),
    reference,
    nonce: noNonce,
    associated_data: noAssociatedData,
    batch_input: batch(
      z.object({ plaintext: base64Text, context, key_version: keyVersion.optional(), reference, nonce: noNonce }),
    ).optional(),
    partial_failure_response_code: partialFailure,
    // Vault reads these only when encrypt creates the key (upsert), which the KMS does not do.
    type: z.string().optional(),
    convergent_encryption: z.boolean().optional(),
  }),
  decrypt: z.object({
    ciphertext: z.string().optional(),
    context,
    reference,
    nonce: noNonce,
    associated_data: noAssociatedData,
    batch_input: batch(z.object({ ciphertext: z.string(), context, reference, nonce: noNonce })).optional(),
    partial_failure_response_code: partialFailure,
  }),
  rewrap: z.object({
    ciphertext: z.string().optional(),
    context,
    key_version: keyVersion.optional(),
    reference,
    nonce: noNonce,
    batch_input: batch(
      z.object({ ciphertext: z.string(), context, key_version: keyVersion.optional(), reference, nonce: noNonce }),
    ).optional(),
    partial_failure_response_code: partialFailure,
  }),
  datakey: z.object({
    bits: z
      .union([
        z.number().int(),
        z
          .string()
          .regex(/^\d{1,4}$/)
          .transform(Number),
      ])
      .optional(),
    context,
    nonce: noNonce,
  }),
  sign: z.object({
    input: base64Text.optional(),
    context,
    key_version: keyVersion.optional(),
    hash_algorithm: z.string().optional(),
    prehashed: z.boolean().optional(),
    reference,
    batch_input: batch(z.object({ input: base64Text, context, reference })).optional(),
    partial_failure_response_code: partialFailure,
  }),
  verify: z.object({
    input: base64Text.optional(),
    signature: z.string().optional(),
    context,
    hash_algorithm: z.string().optional(),
    prehashed: z.boolean().optional(),
    reference,
    batch_input: batch(z.object({ input: base64Text, signature: z.string(), context, reference })).optional(),
    partial_failure_response_code: partialFailure,
  }),
};

/**
 * The JSON body (none is `{}`) parsed with `schema`; parameters the endpoint does not know are ignored
 * with Vault's warning (clients such as node-vault send extra fields like `name`).
 */
function vaultBody<T extends z.ZodObject>(req: Request, schema: T): { body: z.infer<T>; warnings: string[] } {
  const raw: unknown = req.body ?? (hasBody(req) ? undefined : {});
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || Buffer.isBuffer(raw)) {
    throw new ValidationError('the request body must be a JSON object', {
      code: 'invalid_body',
    });
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const [issue] = result.error.issues;
    const field = issue?.path.join('.') ?? '';
    throw new ValidationError(`${field ? `${field}: ` : ''}${issue?.message ?? 'invalid body'}`, {
      code: 'invalid_body',
    });
  }
  const unknown = Object.keys(raw).filter((field) => !(field in schema.shape));
  const warnings = unknown.length > 0 ? [`Endpoint ignored these unrecognized parameters: [${unknown.join(' ')}]`] : [];
  return { body: result.data, warnings };
}

/** A request without `batch_input` is one item whose failure is the whole answer (`400 {"errors": [...]}`). */
function single<R extends object>(results: readonly BatchResult<R>[]): R {
  const [result] = results;
  if (!result) throw new ValidationError('missing input', { code: 'invalid_body' });
  if ('error' in result) throw new ValidationError(result.error, { code: 'invalid_request' });
  return result as R;
}

function missing(field: string, operation: string): never {
  throw new ValidationError(`missing ${field} to ${operation}`, { code: 'invalid_body' });
}

/** Answers a batch (`batch_results`, Vault's status) or a single item (its fields). */
function answerItems<R extends object>(
  res: Response,
  results: readonly BatchResult<R>[],
  isBatch: boolean,
  warnings: string[],
  partialFailureCode?: number,
): void {
  if (isBatch) {
    answer(res, { batch_results: results }, { status: batchStatus(results, partialFailureCode), warnings });
  } else {
    answer(res, single(results), { warnings });
  }
}

export function vaultTransitRouter(): Router {
  const router = Router();

  router.post('/keys/:name', async (req, res) => {
    const ctx = tenantContext(res);
    const { body, warnings } = vaultBody(req, schemas.createKey);
    const { type, ...options } = body;
    const { key, created } = await createTransitKey(ctx, String(req.params.name), type, options);
    if (!created) warnings.push(`key ${key.name} already existed`);
    answer(res, await transitKeyInfo(ctx, key), { warnings });
  });

  router.get('/keys/:name', async (req, res) => {
    const ctx = tenantContext(res);
    const key = await findTransitKey(ctx, String(req.params.name));
    if (!key) throw transitKeyNotFound();
    answer(res, await transitKeyInfo(ctx, key));
  });

  router.post('/keys/:name/rotate', async (req, res) => {
    const ctx = tenantContext(res);
    const { warnings } = vaultBody(req, z.object({}));
    answer(res, await transitKeyInfo(ctx, await rotateTransitKey(ctx, String(req.params.name))), { warnings });
  });

  router.post('/encrypt/:name', async (req, res) => {
    const { body, warnings } = vaultBody(req, schemas.encrypt);
    const items = body.batch_input ?? [
      { plaintext: body.plaintext ?? missing('plaintext', 'encrypt'), ...pick(body, 'context', 'key_version') },
    ];
    const results = await transitEncrypt(tenantContext(res), String(req.params.name), items);
    answerItems(res, results, body.batch_input !== undefined, warnings, body.partial_failure_response_code);
  });

  router.post('/decrypt/:name', async (req, res) => {
    const { body, warnings } = vaultBody(req, schemas.decrypt);
    const items = body.batch_input ?? [
      { ciphertext: body.ciphertext ?? missing('ciphertext', 'decrypt'), ...pick(body, 'context') },
    ];
    const results = await transitDecrypt(tenantContext(res), String(req.params.name), items);
    answerItems(res, results, body.batch_input !== undefined, warnings, body.partial_failure_response_code);
  });

  router.post('/rewrap/:name', async (req, res) => {
    const { body, warnings } = vaultBody(req, schemas.rewrap);
    const items = body.batch_input ?? [
      { ciphertext: body.ciphertext ?? missing('ciphertext', 'rewrap'), ...pick(body, 'context', 'key_version') },
    ];
    const results = await transitRewrap(tenantContext(res), String(req.params.name), items);
    answerItems(res, results, body.batch_input !== undefined, warnings, body.partial_failure_response_code);
  });

  router.post('/datakey/:kind/:name', async (req, res) => {
    const kind = String(req.params.kind);
    if (kind !== 'plaintext' && kind !== 'wrapped') {
      throw new ValidationError(`invalid type ${kind}: use plaintext or wrapped`, { code: 'invalid_request' });
    }
    const { body, warnings } = vaultBody(req, schemas.datakey);
    const result = await transitDataKey(tenantContext(res), String(req.params.name), {
      bits: body.bits,
      context: body.context,
      withPlaintext: kind === 'plaintext',
    });
    answer(res, result, { warnings });
  });

  const signRoute = async (req: Request, res: Response) => {
    const { body, warnings } = vaultBody(req, schemas.sign);
    const items = body.batch_input ?? [{ input: body.input ?? missing('input', 'sign'), ...pick(body, 'context') }];
    const options = { ...pick(body, 'hash_algorithm', 'prehashed', 'key_version'), ...hashFromPath(req) };
    const results = await transitSign(tenantContext(res), String(req.params.name), items, options);
    answerItems(res, results, body.batch_input !== undefined, warnings, body.partial_failure_response_code);
  };
  router.post('/sign/:name', signRoute);
  router.post('/sign/:name/:hash', signRoute);

  const verifyRoute = async (req: Request, res: Response) => {
    const { body, warnings } = vaultBody(req, schemas.verify);
    const items = body.batch_input ?? [
      {
        input: body.input ?? missing('input', 'verify'),
        signature: body.signature ?? missing('signature', 'verify'),
        ...pick(body, 'context'),
      },
    ];
    const options = { ...pick(body, 'hash_algorithm', 'prehashed'), ...hashFromPath(req) };
    const results = await transitVerify(tenantContext(res), String(req.params.name), items, options);
    answerItems(res, results, body.batch_input !== undefined, warnings, body.partial_failure_response_code);
  };
  router.post('/verify/:name', verifyRoute);
  router.post('/verify/:name/:hash', verifyRoute);

  // Vault's answer for a path the engine does not have.
  router.use((_req, _res, next) => next(new NotFoundError('not_found', { detail: 'unsupported path' })));
  return router;
}

/** The given (not undefined) fields of `body`, so optional properties stay absent. */
function pick<T extends object, K extends keyof T>(body: T, ...fields: K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const field of fields) if (body[field] !== undefined) picked[field] = body[field];
  return picked;
}

/** `sign/:name/:hash_algorithm` (Vault's path form of `hash_algorithm`). */
function hashFromPath(req: Request): { hash_algorithm?: string } {
  return req.params.hash === undefined ? {} : { hash_algorithm: String(req.params.hash) };
}

/** Vault's status for a KMS error: refusals are 403, other client errors 400 (404, 413, 429 kept). */
function vaultStatus(status: number): number {
  if (status === 401 || status === 403) return 403;
  if (status === 404 || status === 413 || status === 429 || status >= 500) return status;
  return 400;
}

/** The error handler of this router: `{"errors": [...]}`, never a stack, SQL or key bytes. */
export function vaultTransitErrors(logger?: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof TokenValidationError) {
      res.locals.problemCode = error.code;
      const unavailable = error.status === 503;
      const errors = unavailable
        ? ['identity unavailable: the credential cannot be checked now']
        : ['permission denied'];
      res.status(unavailable ? 503 : 403).json({ errors });
      return;
    }
    const appError = toAppError(error);
    res.locals.problemCode = appError.code;
    const status = vaultStatus(appError.status);
    if (status >= 500) {
      logger?.error('request failed', {
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status,
        error: appError.cause ?? appError,
      });
    }
    for (const [name, value] of Object.entries(appError.headers)) {
      if (name.toLowerCase() !== 'www-authenticate') res.setHeader(name, value);
    }
    // A missing key on read is Vault's bare 404 `{"errors":[]}` (its detail is empty).
    const errors = status >= 500 ? ['internal error'] : appError.detail ? [appError.detail] : [];
    res.status(status).json({ errors });
  };
}
