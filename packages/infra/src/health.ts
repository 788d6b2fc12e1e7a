/**
 * Admin endpoints (kms.md "Listeners"): liveness says the process runs; readiness runs every dependency
 * check concurrently with a timeout and answers 503 `degraded` if any fails. Check errors are reported
 * as short fixed messages: connection strings or SQL never leak through them.
 */
import { Router } from 'express';
import { performance } from 'node:perf_hooks';
import type { Database } from './db/database.js';

/** Resolves (optionally with details) when healthy; rejects when not. */
export type HealthCheck = () => Promise<Record<string, unknown> | undefined>;

export interface AdminRouterOptions {
  service: string;
  version: string;
  checks: Record<string, HealthCheck>;
  /** Called after `POST /admin/v1/shutdown` has been answered. */
  onShutdown?: () => void | Promise<void>;
  checkTimeoutMs?: number;
}

export interface CheckResult {
  status: 'ok' | 'error';
  latency_ms: number;
  error?: string;
  [detail: string]: unknown;
}

class CheckTimeout extends Error {}

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const details = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout()), timeoutMs);
      }),
    ]);
    return { ...(details ?? {}), status: 'ok', latency_ms: Math.round(performance.now() - started) };
  } catch (error) {
    return {
      status: 'error',
      latency_ms: Math.round(performance.now() - started),
      error: error instanceof CheckTimeout ? `no answer within ${timeoutMs} ms` : 'check failed',
    };
  } finally {
    clearTimeout(timer);
  }
}

export async function readiness(
  checks: Record<string, HealthCheck>,
  timeoutMs: number,
): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const),
  );
  return { ok: entries.every(([, result]) => result.status === 'ok'), checks: Object.fromEntries(entries) };
}

export function createAdminRouter(options: AdminRouterOptions): Router {
  const router = Router();
  const base = () => ({ service: options.service, version: options.version, timestamp: new Date().toISOString() });
  router.get('/admin/v1/livez', (_req, res) => {
    res.json({ status: 'ok', probe: 'liveness', ...base() });
  });
  router.get('/admin/v1/readyz', async (_req, res) => {
    const result = await readiness(options.checks, options.checkTimeoutMs ?? 2000);
    res.status(result.ok ? 200 : 503).json({
      status: result.ok ? 'ok' : 'degraded',
      probe: 'readiness',
      ...base(),
      checks: result.checks,
    });
  });
  if (options.onShutdown) {
    const onShutdown = options.onShutdown;
    router.post('/admin/v1/shutdown', (_req, res) => {
      res.on('finish', () => void onShutdown());
      res.status(202).json({ status: 'shutting_down', ...base() });
    });
  }
  return router;
}

export function databaseCheck(db: Database, timeoutMs = 2000): HealthCheck {
  return async () => {
    await db.ping(timeoutMs);
    return { dialect: db.dialect };
  };
}

export function memoryCheck(maxRssBytes = 1024 ** 3): HealthCheck {
  return async () => {
    const rss = process.memoryUsage().rss;
    if (rss > maxRssBytes) throw new Error('memory above limit');
    return { rss_bytes: rss };
  };
}
