/**
 * The KMS's rate limits (config `rate_limits`): password sign-ins per client IP (browser login and HTTP
 * Basic, each a PBKDF2 run), and crypto operations per client IP (before authentication) and per
 * authenticated caller (after it). Refusals are 429 problems with Retry-After, recorded by the audit trail.
 */
import { Router, type RequestHandler } from 'express';
import {
  byClientIp,
  limitRequests,
  limiterFrom,
  type Queryable,
  type RateLimitConfig,
  type RateLimiter,
} from '@cryptoutil/infra';
import { operationOf } from './access.js';
import type { KmsPrincipal } from './authentication.js';

export interface KmsRateLimiters {
  loginPerIp?: RateLimiter | undefined;
  cryptoPerClient?: RateLimiter | undefined;
  cryptoPerIp?: RateLimiter | undefined;
}

/** The configured limits, their buckets shared through `db` by every KMS instance. */
export function kmsRateLimiters(
  config: {
    login_per_ip: RateLimitConfig;
    crypto_per_client: RateLimitConfig;
    crypto_per_ip: RateLimitConfig;
  },
  db: Queryable,
): KmsRateLimiters {
  return {
    loginPerIp: limiterFrom(config.login_per_ip, { db, name: 'login_per_ip' }),
    cryptoPerClient: limiterFrom(config.crypto_per_client, { db, name: 'crypto_per_client' }),
    cryptoPerIp: limiterFrom(config.crypto_per_ip, { db, name: 'crypto_per_ip' }),
  };
}

const CRYPTO_SCOPES = new Set(['kms:encrypt', 'kms:decrypt', 'kms:rewrap', 'kms:sign', 'kms:verify', 'kms:generate']);

const isCrypto = (req: Parameters<RequestHandler>[0]) => CRYPTO_SCOPES.has(operationOf(req)?.scope ?? '');

/** Before authentication: HTTP Basic sign-ins and crypto calls, per client IP. */
export function limitsBeforeAuthentication(limiters: KmsRateLimiters): RequestHandler[] {
  return [
    limitRequests(limiters.loginPerIp, (req) =>
      /^basic /i.test(req.headers.authorization ?? '') ? byClientIp(req) : undefined,
    ),
    limitRequests(limiters.cryptoPerIp, (req) => (isCrypto(req) ? byClientIp(req) : undefined)),
  ];
}

/** After authentication: crypto calls per caller (token subject, API key, certificate, realm user). */
export function limitsAfterAuthentication(limiters: KmsRateLimiters): RequestHandler {
  return limitRequests(limiters.cryptoPerClient, (req, res) =>
    isCrypto(req) ? (res.locals.principal as KmsPrincipal | undefined)?.subject : undefined,
  );
}

/** The browser API's `POST /login`, per client IP. */
export function loginLimit(limiters: KmsRateLimiters): Router {
  return Router().post('/login', limitRequests(limiters.loginPerIp, byClientIp));
}
