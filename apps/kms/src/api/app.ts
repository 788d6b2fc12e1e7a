/**
 * The public listener's Express app: security defaults, the same routers under `/service/api/v1`
 * (machine clients) and `/browser/api/v1` (browser), optional extra routes (OpenAPI, Swagger UI),
 * and problem+json for everything that goes wrong.
 */
import express, { Router, type Express, type RequestHandler } from 'express';
import { applySecurityDefaults, notFoundHandler, problemHandler, type Logger } from '@cryptoutil/infra';
import type { TenantDirectory } from '../domain/tenant.js';
import { cryptoRouter } from './crypto.js';
import { elasticKeysRouter } from './elastic-keys.js';
import { materialKeysRouter } from './material-keys.js';
import { tenantSelection } from './tenant-selection.js';

export const API_PREFIXES = ['/service/api/v1', '/browser/api/v1'] as const;

export interface PublicAppOptions {
  logger?: Logger;
  bodyLimitBytes?: number;
  /** Mounted before the API (e.g. Swagger UI with its own CSP). */
  extraRouters?: Router[];
  /** Authentication and authorization in front of every API route; absent: open (loopback only). */
  access?: RequestHandler;
}

export function createPublicApp(tenants: TenantDirectory, options: PublicAppOptions = {}): Express {
  const app = express();
  applySecurityDefaults(app, {
    rawTypes: ['application/jose'],
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
  });
  for (const router of options.extraRouters ?? []) app.use(router);
  const api = Router();
  if (options.access) api.use(options.access);
  api.use(tenantSelection(tenants), elasticKeysRouter(), materialKeysRouter(), cryptoRouter());
  for (const prefix of API_PREFIXES) app.use(prefix, api);
  app.use(notFoundHandler());
  app.use(problemHandler(options.logger ? { logger: options.logger } : {}));
  return app;
}
