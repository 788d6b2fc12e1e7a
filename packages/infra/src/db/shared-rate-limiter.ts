/**
 * Rate-limit buckets shared by every instance through the database (issue #10, #17): with N instances
 * behind a load balancer a client still gets the configured rate, not N times it.
 *
 * The bucket of a key lives in one row (`rate_limit_buckets`) and is refilled and taken from in one atomic
 * statement, so instances never hand out more than `burst + per_second × t` between them. To keep the
 * database off the hot path an instance takes tokens in leases: one token for a key seen rarely, then twice
 * as many each time a lease is used up within `leaseMs` (up to a tenth of the burst), spending them without
 * a query. An unused lease expires after `leaseMs` and its tokens are lost, which only makes the limit
 * stricter. A refusal is remembered until the bucket can hold a token again, so a flood of refused
 * requests costs no queries. If the database cannot be reached the instance falls back to its own bucket,
 * and keeps to it for a few seconds before asking the database again (so an unreachable database does not
 * add its timeout to every request).
 */
import { sql, type SQL } from 'drizzle-orm';
import { tokenBucketLimiter, type RateLimitDecision, type RateLimiter } from '../http-security.js';
import type { Migration } from './migrations.js';
import type { Queryable } from './database.js';

export const RATE_LIMIT_TABLE = 'rate_limit_buckets';
/** How long an instance keeps to its own bucket after the database failed to answer. */
const FALLBACK_MS = 5000;

/** The table of shared buckets, for a product's migration list. */
export function rateLimitMigration(id: string): Migration {
  return {
    id,
    sql: `CREATE TABLE ${RATE_LIMIT_TABLE} (
  key TEXT PRIMARY KEY,
  tokens DOUBLE PRECISION NOT NULL,
  taken BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);
CREATE INDEX ${RATE_LIMIT_TABLE}_by_age ON ${RATE_LIMIT_TABLE} (updated_ms);`,
  };
}

export interface SharedLimiterOptions {
  /** Distinguishes this limit's rows from other limits' (e.g. `token_per_ip`). */
  name: string;
  capacity: number;
  refillPerSecond: number;
  /** How long an instance may spend tokens it took without asking again (default 1000 ms). */
  leaseMs?: number;
  /** Bound on keys remembered in memory (default 100 000). */
  maxKeys?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Rows untouched this long are deleted every 10 minutes (default 1 hour, or the time to refill if longer). */
  forgetAfterMs?: number;
}

interface Lease {
  tokens: number;
  expires: number;
  /** Tokens to take next time. */
  chunk: number;
  /** While refused: when the shared bucket holds a token again. */
  refusedUntil: number;
}

export interface SharedRateLimiter extends RateLimiter {
  /** Deletes this limit's rows that have refilled completely (run every 10 minutes); returns how many. */
  sweep(): Promise<number>;
  /** Stops the periodic clean-up. */
  close(): void;
}

export function sharedTokenBucketLimiter(db: Queryable, options: SharedLimiterOptions): SharedRateLimiter {
  if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
    throw new RangeError('sharedTokenBucketLimiter needs capacity ≥ 1 and refillPerSecond > 0');
  }
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? 1000;
  const maxKeys = options.maxKeys ?? 100_000;
  const maxChunk = Math.max(1, Math.floor(options.capacity / 10));
  const leases = new Map<string, Lease>();
  const pending = new Map<string, Promise<RateLimitDecision>>();
  const fallback = tokenBucketLimiter({ capacity: options.capacity, refillPerSecond: options.refillPerSecond });
  const statement = takeStatement(db.dialect, options);
  /** After a failed query, the local bucket decides until then. */
  let unreachableUntil = 0;

  const remember = (key: string, lease: Lease) => {
    leases.delete(key); // re-inserted: Map order is least recently used first
    leases.set(key, lease);
    if (leases.size > maxKeys) leases.delete(leases.keys().next().value as string);
  };

  const take = async (key: string, lease: Lease | undefined): Promise<RateLimitDecision> => {
    const time = now();
    // A lease used up before it expired means the key is busy: take more next time.
    const chunk = lease && lease.tokens < 1 && lease.expires > time ? Math.min(maxChunk, lease.chunk * 2) : 1;
    let row: { taken: number | string; tokens: number | string } | undefined;
    try {
      [row] = await db.all<{ taken: number | string; tokens: number | string }>(
        statement(`${options.name}:${key}`, chunk, time),
      );
    } catch {
      unreachableUntil = now() + FALLBACK_MS;
      return fallback.consume(key);
    }
    const taken = Number(row?.taken ?? 0);
    const tokens = Number(row?.tokens ?? 0);
    if (taken >= 1) {
      remember(key, { tokens: taken - 1, expires: time + leaseMs, chunk, refusedUntil: 0 });
      return { allowed: true, retryAfterSeconds: 0 };
    }
    const waitSeconds = Math.max(0, 1 - tokens) / options.refillPerSecond;
    remember(key, { tokens: 0, expires: 0, chunk: 1, refusedUntil: time + waitSeconds * 1000 });
    return { allowed: false, retryAfterSeconds: Math.ceil(waitSeconds) };
  };

  // A row untouched that long has refilled completely: forgetting it changes nothing. Only this limit's
  // rows: other limits in the table may refill more slowly.
  const refillMs = (options.capacity / options.refillPerSecond) * 1000;
  const forgetAfterMs = options.forgetAfterMs ?? Math.max(3_600_000, refillMs);
  const sweep = () =>
    db.run(sql`DELETE FROM ${sql.raw(RATE_LIMIT_TABLE)}
      WHERE key LIKE ${`${options.name}:%`} AND updated_ms < ${now() - forgetAfterMs}`);
  const sweeping = setInterval(() => void sweep().catch(() => undefined), 10 * 60_000);
  sweeping.unref();

  const consume = (key: string): RateLimitDecision | Promise<RateLimitDecision> => {
    const time = now();
    if (time < unreachableUntil) return fallback.consume(key);
    const lease = leases.get(key);
    if (lease && lease.refusedUntil > time) {
      return { allowed: false, retryAfterSeconds: Math.ceil((lease.refusedUntil - time) / 1000) };
    }
    if (lease && lease.tokens >= 1 && lease.expires > time) {
      lease.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    // One query per key at a time: requests arriving meanwhile share its outcome's lease.
    const inFlight = pending.get(key);
    if (inFlight) return inFlight.then(() => consume(key));
    const asked = take(key, lease).finally(() => pending.delete(key));
    pending.set(key, asked);
    return asked;
  };
  return { consume, sweep, close: () => clearInterval(sweeping) };
}

/**
 * One statement that refills the key's bucket for the time passed, takes up to `chunk` whole tokens and
 * returns how many it took and how many are left (a new key starts full).
 */
function takeStatement(
  dialect: Queryable['dialect'],
  options: SharedLimiterOptions,
): (key: string, chunk: number, now: number) => SQL {
  const least = dialect === 'postgres' ? 'LEAST' : 'MIN';
  const greatest = dialect === 'postgres' ? 'GREATEST' : 'MAX';
  const floor = (expression: SQL) =>
    dialect === 'postgres' ? sql`FLOOR(${expression})` : sql`CAST(${expression} AS INTEGER)`;
  const table = sql.raw(RATE_LIMIT_TABLE);
  const capacity = sql`CAST(${options.capacity} AS DOUBLE PRECISION)`;
  return (key, chunk, now) => {
    const time = sql`CAST(${now} AS BIGINT)`;
    const refilled = sql`${sql.raw(least)}(${capacity}, ${table}.tokens + ${sql.raw(greatest)}(0, ${time} - ${table}.updated_ms) * CAST(${options.refillPerSecond} AS DOUBLE PRECISION) / 1000.0)`;
    const taken = sql`${sql.raw(least)}(CAST(${chunk} AS BIGINT), ${floor(refilled)})`;
    const first = Math.min(chunk, Math.floor(options.capacity));
    return sql`INSERT INTO ${table} (key, tokens, taken, updated_ms)
      VALUES (${key}, ${capacity} - ${first}, ${first}, ${time})
      ON CONFLICT (key) DO UPDATE SET
        taken = ${taken},
        tokens = ${refilled} - ${taken},
        updated_ms = ${sql.raw(greatest)}(${table}.updated_ms, ${time})
      RETURNING taken, tokens`;
  };
}
