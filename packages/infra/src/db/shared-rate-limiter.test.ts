import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQL } from 'drizzle-orm';
import { describeEachDatabase } from '../testing/index.js';
import { openDatabase, type Database, type Queryable } from './database.js';
import { migrate } from './migrations.js';
import { rateLimitMigration, sharedTokenBucketLimiter } from './shared-rate-limiter.js';

const MIGRATIONS = [rateLimitMigration('0001_rate_limit_buckets')];

/** Counts the queries a limiter makes. */
function counted(db: Queryable): Queryable & { queries: number } {
  const wrapper = {
    queries: 0,
    dialect: db.dialect,
    all: <T extends Record<string, unknown>>(query: SQL) => {
      wrapper.queries += 1;
      return db.all<T>(query);
    },
    run: (query: SQL) => db.run(query),
    exec: (text: string) => db.exec(text),
  };
  return wrapper;
}

describeEachDatabase('rate-limit buckets shared through the database', (ctx) => {
  /** Two connections to one database, as two instances of a product have. */
  let first: Database;
  let second: Database;
  beforeAll(async () => {
    if (ctx.dialect === 'sqlite') {
      const file = join(await mkdtemp(join(tmpdir(), 'rate-limits-')), 'shared.sqlite');
      first = await openDatabase({ url: `sqlite:${file}` });
      second = await openDatabase({ url: `sqlite:${file}` });
      await migrate(first, MIGRATIONS);
    } else {
      first = await ctx.open(MIGRATIONS);
      second = await ctx.open();
    }
  });
  afterAll(async () => {
    if (ctx.dialect === 'sqlite') await Promise.all([first.close(), second.close()]);
  });

  const pair = (name: string, capacity: number, refillPerSecond: number, now?: () => number) =>
    [first, second].map((db) =>
      sharedTokenBucketLimiter(db, { name, capacity, refillPerSecond, ...(now ? { now } : {}) }),
    );

  it('lets two instances together allow the burst exactly, refusing the rest with Retry-After', async () => {
    const [a, b] = pair('burst', 20, 0.001);
    const decisions = await Promise.all(
      Array.from({ length: 60 }, (_, n) => Promise.resolve((n % 2 === 0 ? a : b)!.consume('client-1'))),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(20);
    const refused = decisions.filter((decision) => !decision.allowed);
    expect(refused.every((decision) => decision.retryAfterSeconds >= 1)).toBe(true);
    // Another key has its own bucket.
    expect((await b!.consume('client-2')).allowed).toBe(true);
    for (const limiter of [a, b]) limiter!.close();
  });

  it('refills at the configured rate, whichever instance asks', async () => {
    let clock = 1_000_000;
    const [a, b] = pair('refill', 5, 5, () => clock);
    const allowed = async (count: number) => {
      let n = 0;
      for (let i = 0; i < count; i++) if ((await (i % 2 === 0 ? a : b)!.consume('client')).allowed) n++;
      return n;
    };
    expect(await allowed(8)).toBe(5);
    clock += 2000; // leases expire, the bucket is full again (capacity 5), not 10
    expect(await allowed(12)).toBe(5);
    clock += 400; // two tokens
    expect(await allowed(6)).toBe(2);
    for (const limiter of [a, b]) limiter!.close();
  });

  it('keeps a busy key off the database (leases) and still never exceeds the burst across instances', async () => {
    const a = counted(first);
    const limiterA = sharedTokenBucketLimiter(a, { name: 'busy', capacity: 1000, refillPerSecond: 0.001 });
    const limiterB = sharedTokenBucketLimiter(second, { name: 'busy', capacity: 1000, refillPerSecond: 0.001 });
    let allowedA = 0;
    for (let n = 0; n < 300; n++) if ((await limiterA.consume('hot')).allowed) allowedA++;
    expect(allowedA).toBe(300);
    // Leases grow 1, 2, 4, … up to a tenth of the burst: far fewer queries than requests.
    expect(a.queries).toBeLessThan(15);
    let allowedB = 0;
    for (let n = 0; n < 1000; n++) if ((await limiterB.consume('hot')).allowed) allowedB++;
    // A may still hold part of its last lease (at most 100), which B cannot have.
    expect(allowedA + allowedB).toBeLessThanOrEqual(1000);
    expect(allowedA + allowedB).toBeGreaterThanOrEqual(900);
    limiterA.close();
    limiterB.close();
  });

  it('forgets only its own buckets, and only once they have refilled', async () => {
    let clock = 5_000_000;
    const fast = sharedTokenBucketLimiter(first, {
      name: 'sweep-fast',
      capacity: 2,
      refillPerSecond: 1,
      now: () => clock,
    });
    // Refills in 10 000 s, so its rows must outlive the fast limit's hour.
    const slow = sharedTokenBucketLimiter(first, {
      name: 'sweep-slow',
      capacity: 2,
      refillPerSecond: 0.0002,
      now: () => clock,
    });
    for (const limiter of [fast, slow]) for (let n = 0; n < 3; n++) await limiter.consume('client');
    clock += 3_700_000;
    expect(await fast.sweep()).toBe(1);
    expect(await slow.sweep()).toBe(0);
    // The slow bucket is still empty (two taken, under one token refilled since).
    const [a, b] = pair('sweep-slow', 2, 0.0002, () => clock);
    expect((await a!.consume('client')).allowed).toBe(false);
    for (const limiter of [fast, slow, a, b]) limiter!.close();
  });

  it('falls back to its own bucket when the database cannot answer, and asks it again seconds later', async () => {
    let clock = 1_000_000;
    let calls = 0;
    const broken: Queryable = {
      dialect: first.dialect,
      all: () => {
        calls += 1;
        return Promise.reject(new Error('connection refused'));
      },
      run: () => Promise.reject(new Error('connection refused')),
      exec: () => Promise.reject(new Error('connection refused')),
    };
    const limiter = sharedTokenBucketLimiter(broken, {
      name: 'down',
      capacity: 3,
      refillPerSecond: 0.001,
      now: () => clock,
    });
    const decisions = [];
    for (let n = 0; n < 5; n++) decisions.push((await limiter.consume('client')).allowed);
    expect(decisions).toEqual([true, true, true, false, false]);
    // One failed query, then the local bucket decides without waiting on the database each time.
    expect(calls).toBe(1);
    clock += 6000;
    await limiter.consume('client');
    expect(calls).toBe(2);
    limiter.close();
  });
});
