/**
 * Configured rate limits (issue #10): a token bucket per key (client IP, or a credential), refusing with
 * `429 too_many_requests` and `Retry-After`. Each limit is `{burst, per_second}` or `null` (off). Given
 * the database, the buckets are shared by every instance (db/shared-rate-limiter), so N instances together
 * allow the configured rate; without it each process keeps its own.
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { Queryable } from './db/database.js';
import { sharedTokenBucketLimiter } from './db/shared-rate-limiter.js';
import { rateLimitMiddleware, tokenBucketLimiter, type RateLimiter } from './http-security.js';

export const rateLimitSchema = z
  .strictObject({
    /** Requests allowed at once per key. */
    burst: z.number().int().min(1),
    /** Sustained requests per second per key. */
    per_second: z.number().positive(),
  })
  .nullable();

export type RateLimitConfig = z.infer<typeof rateLimitSchema>;

/**
 * The limiter of one configured limit, or undefined when it is off: shared through the database when
 * `shared` names it, else in process memory.
 */
export function limiterFrom(
  config: RateLimitConfig,
  shared?: { db: Queryable; name: string },
): RateLimiter | undefined {
  if (!config) return undefined;
  const bucket = { capacity: config.burst, refillPerSecond: config.per_second };
  return shared ? sharedTokenBucketLimiter(shared.db, { ...bucket, name: shared.name }) : tokenBucketLimiter(bucket);
}

/** `rateLimitMiddleware` for a configured limit: a limit that is off lets everything pass. */
export function limitRequests(
  limiter: RateLimiter | undefined,
  keyOf: (req: Request, res: Response) => string | undefined,
): RequestHandler {
  return limiter ? rateLimitMiddleware(limiter, keyOf) : (_req, _res, next) => next();
}

/** The client's address (the socket's, unless the app trusts a proxy). */
export const byClientIp = (req: Request): string => `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;

/** A presented `Authorization` credential, as a hash (the secret itself is never kept). */
export const byAuthorization = (req: Request): string | undefined => {
  const header = req.headers.authorization;
  return header ? `credential:${createHash('sha256').update(header).digest('base64url')}` : undefined;
};
