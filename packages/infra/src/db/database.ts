/**
 * One database API over SQLite (better-sqlite3, the embedded default) and PostgreSQL (postgres.js).
 * Queries are written once with drizzle's `sql` template, which renders the right placeholders for
 * each engine. Transactions take an async callback on both engines: SQLite has a single connection,
 * so every statement and transaction goes through one async mutex and nothing issued elsewhere can
 * land inside (and be rolled back with) someone else's transaction.
 */
import BetterSqlite3 from 'better-sqlite3';
import { type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { SQLiteSyncDialect } from 'drizzle-orm/sqlite-core';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import postgres from 'postgres';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export type Dialect = 'sqlite' | 'postgres';

export const databaseConfigSchema = z
  .object({
    /** `sqlite::memory:`, `sqlite:<path>` (relative to the working directory) or `postgres://…`. */
    url: z.string().min(1),
    pool_size: z.number().int().min(1).max(100).default(10),
    /** PostgreSQL schema to use (search_path); created if missing. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/)
      .optional(),
    connect_timeout_seconds: z.number().int().min(1).max(120).default(10),
  })
  .strict();

export type DatabaseConfig = z.input<typeof databaseConfigSchema>;

export type Row = Record<string, unknown>;

/** What queries run against: the database itself or an open transaction. */
export interface Queryable {
  readonly dialect: Dialect;
  all<T extends Row = Row>(query: SQL): Promise<T[]>;
  /** Runs a statement; returns the number of affected rows. */
  run(query: SQL): Promise<number>;
  /** Runs raw SQL text, possibly several statements, without parameters (DDL, migrations). */
  exec(text: string): Promise<void>;
}

export interface Database extends Queryable {
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const pgDialect = new PgDialect();
const sqliteDialect = new SQLiteSyncDialect();

/** A FIFO async mutex: SQLite's one connection is used by one unit of work at a time. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async lock<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

function sqliteQueryable(connection: BetterSqlite3.Database): Queryable {
  return {
    dialect: 'sqlite',
    async all<T extends Row>(query: SQL) {
      const { sql: text, params } = sqliteDialect.sqlToQuery(query);
      const statement = connection.prepare(text);
      return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
    },
    async run(query: SQL) {
      const { sql: text, params } = sqliteDialect.sqlToQuery(query);
      return connection.prepare(text).run(...params).changes;
    },
    async exec(text: string) {
      connection.exec(text);
    },
  };
}

function openSqlite(location: string): Database {
  const path = location === ':memory:' ? ':memory:' : resolve(location);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const connection = new BetterSqlite3(path);
  if (path !== ':memory:') connection.pragma('journal_mode = WAL');
  connection.pragma('busy_timeout = 30000');
  connection.pragma('foreign_keys = ON');
  connection.pragma('synchronous = NORMAL');
  const mutex = new Mutex();
  const direct = sqliteQueryable(connection);
  let closed = false;
  return {
    dialect: 'sqlite',
    all: (query) => mutex.lock(() => direct.all(query)),
    run: (query) => mutex.lock(() => direct.run(query)),
    exec: (text) => mutex.lock(() => direct.exec(text)),
    transaction: (work) =>
      mutex.lock(async () => {
        connection.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(direct);
          connection.exec('COMMIT');
          return result;
        } catch (error) {
          if (connection.inTransaction) connection.exec('ROLLBACK');
          throw error;
        }
      }),
    async ping() {
      if (closed) throw new Error('database is closed');
      await mutex.lock(async () => void connection.prepare('SELECT 1').get());
    },
    async close() {
      if (closed) return;
      closed = true;
      await mutex.lock(async () => void connection.close());
    },
  };
}

function postgresQueryable(client: postgres.Sql | postgres.TransactionSql): Queryable {
  return {
    dialect: 'postgres',
    async all<T extends Row>(query: SQL) {
      const { sql: text, params } = pgDialect.sqlToQuery(query);
      return (await client.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[];
    },
    async run(query: SQL) {
      const { sql: text, params } = pgDialect.sqlToQuery(query);
      return (await client.unsafe(text, params as postgres.ParameterOrJSON<never>[])).count;
    },
    async exec(text: string) {
      await client.unsafe(text);
    },
  };
}

function openPostgres(url: string, config: z.output<typeof databaseConfigSchema>): Database {
  const client = postgres(url, {
    max: config.pool_size,
    connect_timeout: config.connect_timeout_seconds,
    onnotice: () => undefined,
    ...(config.schema ? { connection: { search_path: config.schema } } : {}),
  });
  const direct = postgresQueryable(client);
  return {
    ...direct,
    async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      return (await client.begin((tx) => work(postgresQueryable(tx)))) as T;
    },
    async ping(timeoutMs = 2000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([client`SELECT 1`, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export async function openDatabase(input: DatabaseConfig): Promise<Database> {
  const config = databaseConfigSchema.parse(input);
  if (config.url.startsWith('sqlite:')) return openSqlite(config.url.slice('sqlite:'.length));
  if (config.url.startsWith('postgres://') || config.url.startsWith('postgresql://')) {
    if (config.schema) {
      const admin = postgres(config.url, {
        max: 1,
        onnotice: () => undefined,
        connect_timeout: config.connect_timeout_seconds,
      });
      try {
        await admin.unsafe(`CREATE SCHEMA IF NOT EXISTS "${config.schema}"`);
      } finally {
        await admin.end({ timeout: 5 });
      }
    }
    return openPostgres(config.url, config);
  }
  throw new ConfigError('database.url: must start with sqlite: or postgres://', 'database.url');
}

/** True for a unique-constraint violation on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
