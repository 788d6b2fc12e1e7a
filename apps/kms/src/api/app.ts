/**
 * The public listener's Express app: security defaults, the same resource routers under
 * `/service/api/v1` (machine clients: bearer, Basic, API key, client certificate) and `/browser/api/v1`
 * (browser: login session cookie plus CSRF token), the Vault Transit compatible router under `/v1/transit`
 * (its own error shape), optional extra routes (OpenAPI, Swagger UI), and problem+json for everything else
 * that goes wrong.
 */
import express, { Router, type Express, type RequestHandler } from 'express';
import { applySecurityDefaults, notFoundHandler, problemHandler, type AuditLog, type Logger } from '@cryptoutil/infra';
import { apiAuditTrail } from './audit-trail.js';
import type { TenantDirectory } from '../domain/tenant.js';
import { cryptoRouter } from './crypto.js';
import { cryptoBatchRouter } from './crypto-batch.js';
import { elasticKeysRouter } from './elastic-keys.js';
import { materialKeysRouter } from './material-keys.js';
import { wrappingKeyRouter } from './wrapping-key.js';
import { tenantSelection } from './tenant-selection.js';
import { VAULT_TRANSIT_PREFIX } from './access.js';
import {
  vaultBodiesAreJson,
  vaultPutIsPost,
  vaultTokenCredential,
  vaultTransitErrors,
  vaultTransitRouter,
} from './vault-transit.js';
import { browserAccess, browserSessionRouter, type BrowserSessionOptions } from './browser-session.js';
import { identityLoginRouter } from './identity-login.js';
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
  // Before the body parsers: Vault clients send JSON without (or with another) content type.
  app.use(VAULT_TRANSIT_PREFIX, vaultBodiesAreJson());
  applySecurityDefaults(app, {
    // Form bodies arrive raw: only the back-channel logout endpoint reads one (identity-login.ts).
    rawTypes: ['application/jose', 'application/x-www-form-urlencoded'],
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
  });
  for (const router of options.extraRouters ?? []) app.use(router);
  const resources = Router().use(
    tenantSelection(tenants),
    elasticKeysRouter(),
    materialKeysRouter(),
    wrappingKeyRouter(),
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
          ...(options.browser.identityLogin ? [identityLoginRouter(options.browser.identityLogin)] : []),
          browserAccess(options.browser.sessions),
          limitsAfterAuthentication(limits),
          resources,
        )
      : service,
  );
  // Vault Transit compatibility: the same authentication, scopes, limits, audit and tenants, Vault's shapes.
  const vault = Router().use(vaultPutIsPost(), vaultTokenCredential(), trail, ...limitsBeforeAuthentication(limits));
  if (options.access) vault.use(options.access);
  vault.use(limitsAfterAuthentication(limits), tenantSelection(tenants), vaultTransitRouter());
  app.use(VAULT_TRANSIT_PREFIX, vault, vaultTransitErrors(options.logger));
  app.use(notFoundHandler());
  app.use(problemHandler(options.logger ? { logger: options.logger } : {}));
  return app;
}
