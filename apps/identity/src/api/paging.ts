/** `?page=&size=` for the admin lists: zero-based page, 1–1000 items (default 25). */
import type { Request } from 'express';
import { z } from 'zod';
import { ValidationError, formatKey } from '@cryptoutil/infra';

const pageSchema = z.object({
  page: z.coerce.number().int().min(0).max(1_000_000).default(0),
  size: z.coerce.number().int().min(1).max(1000).default(25),
});

export function pageQuery(req: Request): { page: number; size: number } {
  const result = pageSchema.safeParse({ page: req.query.page, size: req.query.size });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue ? formatKey(issue.path) : 'page';
  throw new ValidationError(`${field}: ${issue?.message ?? 'invalid'}`, {
    code: 'invalid_query',
    extensions: { field },
  });
}
