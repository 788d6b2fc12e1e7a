/**
 * The admin listener (never public): liveness, readiness (database reachable and barrier unsealed),
 * graceful shutdown, and barrier tier rotation.
 */
import express, { type Express } from 'express';
import {
  ValidationError,
  adminAuditTrail,
  applySecurityDefaults,
  auditAdminRouter,
  createAdminRouter,
  databaseCheck,
  memoryCheck,
  notFoundHandler,
  problemHandler,
  type AuditLog,
  type HealthCheck,
  type Logger,
} from '@cryptoutil/infra';
import type { BarrierTier } from '../barrier/barrier.js';
import type { KmsService } from '../domain/kms-context.js';
import { adminTenantsRouter } from './admin-tenants.js';
import { adminRealmUsersRouter } from './admin-realm-users.js';
import { NO_REALMS, type Realms } from '../domain/realm.js';

const TIERS: readonly BarrierTier[] = ['root', 'intermediate', 'content'];

export interface AdminAppOptions {
  version: string;
  onShutdown?: () => void | Promise<void>;
  logger?: Logger;
  /** Readiness fails above this resident set size (default 1 GiB). */
  maxRssBytes?: number;
  /** More readiness dependencies (e.g. Identity's JWKS). */
  checks?: Record<string, HealthCheck>;
  /** The configured realms; their database realms' users are administered here. */
  realms?: Realms;
  /** Records state-changing admin calls; served at /admin/v1/audit. */
  audit?: AuditLog;
}

export function createAdminApp(ctx: KmsService, options: AdminAppOptions): Express {
  const app = express();
  applySecurityDefaults(app);
  if (options.audit) app.use(adminAuditTrail(options.audit, options.logger), auditAdminRouter(options.audit));
  app.use(
    createAdminRouter({
      service: 'kms',
      version: options.version,
      checks: {
        database: databaseCheck(ctx.db),
        barrier: async () => {
          if (ctx.barrier.sealed) throw new Error('sealed');
          return { sealed: false, cached_keys: ctx.barrier.cachedKeys };
        },
        memory: memoryCheck(options.maxRssBytes),
        ...options.checks,
      },
      ...(options.onShutdown ? { onShutdown: options.onShutdown } : {}),
    }),
  );
  app.post('/admin/v1/barrier/:tier/rotate', async (req, res) => {
    const tier = req.params.tier as BarrierTier;
    if (!TIERS.includes(tier)) {
      throw new ValidationError(`tier must be one of ${TIERS.join(', ')}.`, { code: 'invalid_tier' });
    }
    res.status(201).json(await ctx.barrier.rotate(tier));
  });
  app.use(adminTenantsRouter(ctx.tenants));
  app.use(adminRealmUsersRouter({ db: ctx.db, now: ctx.now, realms: options.realms ?? NO_REALMS }));
  app.use(notFoundHandler());
  app.use(problemHandler(options.logger ? { logger: options.logger } : {}));
  return app;
}
