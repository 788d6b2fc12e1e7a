/**
 * The public listener's Express app: security defaults, the same resource routers under
 * `/service/api/v1` (machine clients: bearer, Basic, API key, client certificate) and `/browser/api/v1`
 * (browser: login session cookie plus CSRF token), optional extra routes (OpenAPI, Swagger UI), and
 * problem+json for everything that goes wrong.
 */
import express, { Router, type Express, type RequestHandler } from 'express';
import { applySecurityDefaults, notFoundHandler, problemHandler, type AuditLog, type Logger } from '@cryptoutil/infra';
import { apiAuditTrail } from './audit-trail.js';
import type { TenantDirectory } from '../domain/tenant.js';
import { cryptoRouter } from './crypto.js';
import { cryptoBatchRouter } from './crypto-batch.js';
import { elasticKeysRouter } from './elastic-keys.js';
import { materialKeysRouter } from './material-keys.js';
import { tenantSelection } from './tenant-selection.js';
import { browserAccess, browserSessionRouter, type BrowserSessionOptions } from './browser-session.js';
import {
  limitsAfterAuthentication,
  limitsBeforeAuthentication,
  loginLimit,
  type KmsRateLimiters,
} from './rate-limits.js';

export const SERVICE_API_PREFIX = '/service/api/v1';
export const BROWSER_API_PREFIX = '/browser/api/v1';

export interface PublicAppOptions {
  logger?: Logger;
  bodyLimitBytes?: number;
  /** Mounted before the API (e.g. Swagger UI with its own CSP). */
  extraRouters?: Router[];
  /** Authentication and authorization in front of every service API route; absent: open (loopback only). */
  access?: RequestHandler;
  /** Sessions for the browser API; absent: the browser API is guarded like the service API. */
  browser?: BrowserSessionOptions;
  /** One audit event per API operation. */
  audit?: AuditLog;
  /** Sign-in and crypto rate limits (none when absent). */
  rateLimits?: KmsRateLimiters;
}

export function createPublicApp(tenants: TenantDirectory, options: PublicAppOptions = {}): Express {
  const app = express();
  applySecurityDefaults(app, {
    rawTypes: ['application/jose'],
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
  });
  for (const router of options.extraRouters ?? []) app.use(router);
  const resources = Router().use(
    tenantSelection(tenants),
    elasticKeysRouter(),
    materialKeysRouter(),
    cryptoRouter(),
    cryptoBatchRouter(),
  );
  const service = Router();
  // The audit trail records every operation, so it comes before access control (refusals count too).
  const trail: RequestHandler = options.audit
    ? apiAuditTrail(options.audit, options.logger)
    : (_req, _res, next) => next();
  const limits = options.rateLimits ?? {};
  service.use(trail, ...limitsBeforeAuthentication(limits));
  if (options.access) service.use(options.access);
  service.use(limitsAfterAuthentication(limits));
  app.use(SERVICE_API_PREFIX, service.use(resources));
  app.use(
    BROWSER_API_PREFIX,
    options.browser
      ? Router().use(
          trail,
          loginLimit(limits),
          ...limitsBeforeAuthentication(limits),
          browserSessionRouter(options.browser),
          browserAccess(options.browser.sessions),
          limitsAfterAuthentication(limits),
          resources,
        )
      : service,
  );
  app.use(notFoundHandler());
  app.use(problemHandler(options.logger ? { logger: options.logger } : {}));
  return app;
}
