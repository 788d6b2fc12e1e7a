/** Strict JSON request bodies: the content type must be JSON and the zod schema must accept the body. */
import type { Request } from 'express';
import type { z } from 'zod';
import { formatKey } from './config.js';
import { UnsupportedMediaTypeError, ValidationError } from './errors.js';

/** Parses `req.body` with `schema`; a failure is a 400 `invalid_body` naming the first bad field. */
export function parseBody<T>(schema: z.ZodType<T>, req: Request): T {
  if (!req.is('application/json')) throw new UnsupportedMediaTypeError('Send the body as application/json.');
  const result = schema.safeParse(req.body);
  if (result.success) return result.data;
  const [issue] = result.error.issues;
  const field = issue ? formatKey(issue.path) : '';
  throw new ValidationError(`${field ? `${field}: ` : ''}${issue?.message ?? 'invalid body'}`, {
    code: 'invalid_body',
    extensions: field ? { field } : {},
  });
}
