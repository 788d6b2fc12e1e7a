/**
 * Test harness (TST-01, TST-05): unique UUIDv7 prefixes, and `describeEachDatabase`, which runs a suite
 * on SQLite and on PostgreSQL. PostgreSQL comes from TEST_DATABASE_URL; without it, from a testcontainers
 * `postgres:15` when Docker is reachable; otherwise the PostgreSQL half is skipped, visibly.
 * Every PostgreSQL suite gets its own throw-away schema, so parallel workers and reruns never collide.
 */
import { afterAll, describe } from '@jest/globals';
import { existsSync } from 'node:fs';
import type * as Testcontainers from 'testcontainers';
import { v7 as uuidv7 } from 'uuid';
import { openDatabase, type Database } from '../db/database.js';
import { migrate, type Migration } from '../db/migrations.js';

export function uniquePrefix(label = 'test'): string {
  return `${label}-${uuidv7()}`;
}

export interface DatabaseTestContext {
  readonly dialect: 'sqlite' | 'postgres';
  /** Opens a database (migrated if migrations are given); closed (and its schema dropped) after the suite. */
  open(migrations?: readonly Migration[]): Promise<Database>;
  /** Connection settings of this engine for processes the test starts itself. */
  readonly url: () => string;
  readonly schema: string | undefined;
}

let postgresUrl: Promise<string | undefined> | undefined;
let skipWarned = false;

function dockerReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function startContainer(): Promise<string | undefined> {
  try {
    const module = 'testcontainers';
    const { GenericContainer, Wait } = (await import(module)) as typeof Testcontainers;
    const container = await new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_PASSWORD: 'test', POSTGRES_DB: 'test' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    return `postgres://postgres:test@${container.getHost()}:${container.getMappedPort(5432)}/test`;
  } catch {
    return undefined;
  }
}

/** The PostgreSQL URL for tests, or undefined when none can be had. */
export function testPostgresUrl(): Promise<string | undefined> {
  postgresUrl ??= process.env.TEST_DATABASE_URL
    ? Promise.resolve(process.env.TEST_DATABASE_URL)
    : dockerReachable()
      ? startContainer()
      : Promise.resolve(undefined);
  return postgresUrl;
}

export const POSTGRES_AVAILABLE_SYNC = Boolean(process.env.TEST_DATABASE_URL) || dockerReachable();

function context(dialect: 'sqlite' | 'postgres'): DatabaseTestContext & { cleanup(): Promise<void> } {
  const opened: Database[] = [];
  const named = new Set<string>();
  const schema = dialect === 'postgres' ? `test_${uuidv7().replace(/-/g, '_')}` : undefined;
  let url = 'sqlite::memory:';
  return {
    dialect,
    schema,
    url: () => url,
    async open(migrations) {
      if (dialect === 'postgres') {
        const found = await testPostgresUrl();
        if (!found) throw new Error('PostgreSQL is not available');
        url = found;
      }
      const opening = await openDatabase({ url, pool_size: 4, ...(schema ? { schema } : {}) });
      // Named schemas made during the suite (tenants) are dropped with it too.
      const db: Database = {
        ...opening,
        schema: async (name) => {
          const view = await opening.schema(name);
          named.add(name);
          return view;
        },
      };
      opened.push(db);
      if (migrations) await migrate(db, migrations);
      return db;
    },
    async cleanup() {
      if (schema && opened.length > 0) {
        const [first] = opened;
        try {
          for (const name of named) await first?.dropSchema(name);
          await first?.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await Promise.all(opened.map((db) => db.close()));
        }
        return;
      }
      await Promise.all(opened.map((db) => db.close()));
    },
  };
}

export function describeEachDatabase(title: string, body: (ctx: DatabaseTestContext) => void): void {
  for (const dialect of ['sqlite', 'postgres'] as const) {
    if (dialect === 'postgres' && !POSTGRES_AVAILABLE_SYNC) {
      if (!skipWarned) {
        skipWarned = true;
        console.warn('PostgreSQL tests skipped: no TEST_DATABASE_URL and no Docker engine reachable.');
      }
      describe.skip(`${title} [postgres: skipped: no TEST_DATABASE_URL and no Docker]`, () => body(context(dialect)));
      continue;
    }
    describe(`${title} [${dialect}]`, () => {
      const ctx = context(dialect);
      afterAll(() => ctx.cleanup());
      body(ctx);
    });
  }
}
export * from './otlp-receiver.js';

export { TcpOutage } from './tcp-outage.js';
export { RoundRobinProxy } from './round-robin.js';
export { storedSecretFindings } from './stored-secrets.js';
export { testPorts } from './test-ports.js';
