/**
 * Graceful shutdown: on SIGINT/SIGTERM or `shutdown()` (e.g. `POST /admin/v1/shutdown`):
 * 1. every registered server stops accepting connections;
 * 2. in-flight requests may finish for up to `drainTimeoutMs`, idle keep-alive connections are closed as they
 *    appear; what is still open at the deadline is cut;
 * 3. cleanup hooks run in reverse registration order (close the database after what uses it), each bounded
 *    by `hookTimeoutMs`; a failing hook is logged and the others still run.
 * A signal then exits with 0 (1 if something failed); a second signal during shutdown forces exit 1.
 * Signal source and exit are injectable, so tests never touch the real process.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from './logger.js';

export type ShutdownSignal = 'SIGINT' | 'SIGTERM';

/** What `process` offers for signals; tests pass an `EventEmitter`. */
export interface SignalSource {
  on(signal: ShutdownSignal, listener: () => void): unknown;
  off(signal: ShutdownSignal, listener: () => void): unknown;
}

export interface ShutdownOptions {
  logger: Logger;
  /** Time in-flight requests get to finish (default 10 s). */
  drainTimeoutMs?: number;
  /** Time each cleanup hook gets (default 5 s). */
  hookTimeoutMs?: number;
  /** Default `process.exit`. */
  exit?: (code: number) => void;
  /** Default `process`. */
  signals?: SignalSource;
}

export type CleanupHook = () => void | Promise<void>;

export interface Shutdown {
  /** Drains this server on shutdown. */
  addServer(server: HttpServer | HttpsServer): void;
  /** Runs `hook` on shutdown, after the servers are closed and before earlier-registered hooks. */
  addHook(name: string, hook: CleanupHook): void;
  /** Starts (or joins) the shutdown; resolves `true` when everything closed cleanly. Never exits. */
  shutdown(reason?: string): Promise<boolean>;
  /** `shutdown()` then exit (0 when clean, else 1). */
  terminate(reason?: string): Promise<void>;
  /** True once shutdown has begun (readiness probes report not ready). */
  readonly shuttingDown: boolean;
  /** Removes the signal listeners (tests, or a host process that manages its own). */
  dispose(): void;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_HOOK_TIMEOUT_MS = 5_000;
const IDLE_SWEEP_MS = 50;

function delay(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** Closes one server: refuses new connections, sweeps idle ones, cuts the rest at the deadline. */
export async function drainServer(server: HttpServer | HttpsServer, timeoutMs: number): Promise<boolean> {
  if (!server.listening) return true;
  const closed = new Promise<'closed'>((resolve) => server.close(() => resolve('closed')));
  // Connections that finish their response go idle; keep closing them until none is left.
  const sweeper = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  server.closeIdleConnections();
  const deadline = delay(timeoutMs);
  try {
    const outcome = await Promise.race([closed, deadline.promise]);
    if (outcome === 'closed') return true;
    server.closeAllConnections();
    await closed;
    return false;
  } finally {
    clearInterval(sweeper);
    deadline.cancel();
  }
}

async function runHook(name: string, hook: CleanupHook, timeoutMs: number, logger: Logger): Promise<boolean> {
  const deadline = delay(timeoutMs);
  try {
    const outcome = await Promise.race([Promise.resolve().then(hook), deadline.promise]);
    if (outcome === 'timeout') {
      logger.error('shutdown hook timed out', { hook: name, timeout_ms: timeoutMs });
      return false;
    }
    return true;
  } catch (error) {
    logger.error('shutdown hook failed', { hook: name, error });
    return false;
  } finally {
    deadline.cancel();
  }
}

export function createShutdown(options: ShutdownOptions): Shutdown {
  const { logger } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  const hookTimeoutMs = options.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals: SignalSource = options.signals ?? process;
  const servers: (HttpServer | HttpsServer)[] = [];
  const hooks: { name: string; hook: CleanupHook }[] = [];
  let running: Promise<boolean> | undefined;

  async function run(reason: string): Promise<boolean> {
    logger.info('shutting down', { reason, servers: servers.length, hooks: hooks.length });
    const drained = await Promise.all(servers.map((server) => drainServer(server, drainTimeoutMs)));
    if (drained.includes(false)) logger.warn('drain timeout reached; open connections were closed', { drainTimeoutMs });
    let clean = !drained.includes(false);
    for (const { name, hook } of [...hooks].reverse()) {
      clean = (await runHook(name, hook, hookTimeoutMs, logger)) && clean;
    }
    logger.info('shutdown complete', { clean });
    return clean;
  }

  const shutdown = (reason = 'requested'): Promise<boolean> => (running ??= run(reason));

  const terminate = async (reason?: string): Promise<void> => {
    const clean = await shutdown(reason);
    exit(clean ? 0 : 1);
  };

  const onSignal = (signal: ShutdownSignal) => (): void => {
    if (running) {
      logger.warn('second signal: exiting now', { signal });
      exit(1);
      return;
    }
    void terminate(signal);
  };
  const listeners = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
  signals.on('SIGINT', listeners.SIGINT);
  signals.on('SIGTERM', listeners.SIGTERM);

  return {
    addServer: (server) => void servers.push(server),
    addHook: (name, hook) => void hooks.push({ name, hook }),
    shutdown,
    terminate,
    get shuttingDown() {
      return running !== undefined;
    },
    dispose() {
      signals.off('SIGINT', listeners.SIGINT);
      signals.off('SIGTERM', listeners.SIGTERM);
    },
  };
}
