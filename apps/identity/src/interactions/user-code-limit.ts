/**
 * The limit on device-flow user codes entered per client IP (RFC 8628 §5.1: a user code is short, so
 * guessing one must be slow). Counted on every submission to the code verification endpoint; a refusal is
 * the page's own look, status 429 with `Retry-After`.
 */
import type { RequestHandler } from 'express';
import { byClientIp, type RateLimitDecision, type RateLimiter } from '@cryptoutil/infra';
import { renderTooManyCodesPage } from './device-views.js';

export function limitUserCodes(limiter: RateLimiter | undefined): RequestHandler {
  if (!limiter) return (_req, _res, next) => next();
  return (req, res, next) => {
    const decide = (decision: RateLimitDecision) => {
      if (decision.allowed) {
        next();
        return;
      }
      const seconds = Math.max(1, Math.ceil(decision.retryAfterSeconds));
      res.status(429).set({ 'Retry-After': String(seconds), 'Cache-Control': 'no-store' });
      res.type('html').send(renderTooManyCodesPage(seconds));
    };
    const decision = limiter.consume(byClientIp(req));
    if ('then' in decision) decision.then(decide, next);
    else decide(decision);
  };
}
