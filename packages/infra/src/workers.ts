/**
 * The `workers` setting: several processes of one service on one machine (node:cluster), sharing its
 * listeners, so throughput grows with cores. All shared state already lives in the database (keys, audit
 * chain, sessions, rate limits, lockouts), so workers need nothing from each other. The primary only
 * supervises: it starts the workers one after the other (the first creates the CA, the key hierarchy and
 * the schema; the others start on them), stops them all on SIGTERM/SIGINT, and if any worker exits it
 * stops the others and exits with that worker's code, so an orchestrator sees one service and restarts
 * it whole (no half-alive service, no restart loop inside the process).
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';

/** `1` (default), a number, or `auto` for one per CPU the process may use. */
export const workersSchema = z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1);

const READY = 'cryptoutil:worker-ready';

export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** True in the process that should supervise workers instead of serving (`workers` above 1, not a worker). */
export function isSupervisor(count: number): boolean {
  return count > 1 && cluster.isPrimary;
}

/** Workers share state only through the database: an in-memory SQLite database cannot be shared. */
export function assertShareableDatabase(count: number, databaseUrl: string): void {
  if (count > 1 && databaseUrl === 'sqlite::memory:') {
    throw new ConfigError(
      `workers: ${count} needs a database the processes share (a SQLite file or PostgreSQL), not sqlite::memory:`,
    );
  }
}

/** The worker's number (1…n) in a cluster, undefined in a single process. */
export function workerNumber(): number | undefined {
  return cluster.worker?.id;
}

/** True in a single process and in a cluster's first worker: the one that may reset demo data. */
export function isFirstWorker(): boolean {
  return (workerNumber() ?? 1) === 1;
}

/** Tells the supervisor that this worker is listening (no-op in a single process). */
export function reportWorkerReady(): void {
  if (cluster.isWorker) process.send?.({ type: READY });
}

function exited(worker: Worker): Promise<void> {
  if (worker.isDead()) return Promise.resolve();
  return new Promise((resolve) => worker.once('exit', () => resolve()));
}

/**
 * Starts `count` workers (this script again, same arguments), one after the other, each awaited until it
 * reports ready; then supervises them. Rejects if a worker exits before it is ready (its stderr says why).
 */
export async function superviseWorkers(options: { count: number; logger: Logger; service: string }): Promise<void> {
  const { count, logger, service } = options;
  const workers: Worker[] = [];
  let stopping = false;
  const stopAll = async (code: number, reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${service} stopping workers`, { reason });
    for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGTERM');
    await Promise.all(workers.map(exited));
    process.exit(code);
  };
  process.on('SIGTERM', () => void stopAll(0, 'SIGTERM'));
  process.on('SIGINT', () => void stopAll(0, 'SIGINT'));
  for (let n = 1; n <= count; n++) {
    const worker = cluster.fork();
    workers.push(worker);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: { type?: string } | undefined) => {
        if (message?.type === READY) resolve();
      });
      worker.once('exit', (code, signal) => {
        if (!stopping) {
          const reason = `worker ${n} exited (${signal ?? `code ${code}`})`;
          logger.error(`${service} worker exited; stopping the others`, { worker: n, code, signal });
          void stopAll(code ?? 1, reason);
        }
        reject(new Error(`worker ${n} exited before it was ready`));
      });
    });
  }
  logger.info(`${service} workers started`, { workers: count, pids: workers.map((w) => w.process.pid) });
}

/**
 * The `workers` setting as a composition root uses it: refuses a database the workers could not share,
 * then, in the process that should supervise, starts and supervises the workers and resolves true (the
 * caller serves nothing itself); elsewhere resolves false (serve as usual).
 */
export async function superviseWhenClustered(options: {
  workers: number | 'auto';
  databaseUrl: string;
  logger: Logger;
  service: string;
}): Promise<boolean> {
  const count = workerCount(options.workers);
  assertShareableDatabase(count, options.databaseUrl);
  if (!isSupervisor(count)) return false;
  await superviseWorkers({ count, logger: options.logger, service: options.service });
  return true;
}
