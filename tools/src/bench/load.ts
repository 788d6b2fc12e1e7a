/**
 * Load generators for `pnpm bench`. Both verify TLS fully (chain and hostname against the bench CA):
 * autocannon was not used because its client turns certificate verification off.
 * Every run is bounded in time and only ever targets loopback addresses.
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadTarget {
  url: string;
  /** Root CA (PEM) that the server's chain must verify against. */
  ca: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface LoadOptions {
  connections: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function assertLoopback(url: URL): void {
  if (!LOOPBACK_HOSTS.has(url.hostname)) {
    throw new Error(`bench targets loopback only, not ${url.hostname}`);
  }
}

export function percentile(sortedMs: readonly number[], fraction: number): number {
  if (sortedMs.length === 0) return 0;
  const index = Math.min(sortedMs.length - 1, Math.ceil(fraction * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] ?? 0;
}

export function summarize(latenciesMs: number[], errors: number, elapsedMs: number): LoadResult {
  latenciesMs.sort((a, b) => a - b);
  return {
    requests: latenciesMs.length,
    errors,
    requestsPerSecond: elapsedMs > 0 ? (latenciesMs.length * 1000) / elapsedMs : 0,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
  };
}

/** Keep-alive load: `connections` workers, each with one persistent TLS connection. */
export async function keepAliveLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const url = new URL(target.url);
  assertLoopback(url);
  const pool = new Pool(url.origin, {
    connections: options.connections,
    pipelining: 1,
    connect: { ca: target.ca, minVersion: 'TLSv1.3' },
  });
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const response = await pool.request({
          path: url.pathname + url.search,
          method: target.method ?? 'GET',
          headers: target.headers,
          body: target.body,
        });
        await response.body.dump();
        if (response.statusCode >= 400) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  const elapsed = performance.now() - started;
  await pool.close();
  return summarize(latencies, errors, elapsed);
}

/** New-connection load: every request opens (and fully verifies) a new TLS 1.3 connection. */
export async function newConnectionLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const url = new URL(target.url);
  assertLoopback(url);
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = https.request(
        url,
        {
          method: target.method ?? 'GET',
          headers: target.headers,
          agent: false,
          ca: target.ca,
          minVersion: 'TLSv1.3',
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', reject);
      request.end(target.body);
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const status = await once();
        if (status >= 400) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  return summarize(latencies, errors, performance.now() - started);
}

/**
 * Flow load: `connections` workers each run `step(worker)` (a multi-request flow with its own state, e.g.
 * a sign-in through the form) again and again; a step that throws counts as an error.
 */
export async function flowLoad(step: (worker: number) => Promise<void>, options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async (index: number): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await step(index);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, (_, index) => worker(index)));
  return summarize(latencies, errors, performance.now() - started);
}
