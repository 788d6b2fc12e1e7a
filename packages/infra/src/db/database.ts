/**
 * One database API over SQLite (better-sqlite3, the embedded default) and PostgreSQL (postgres.js).
 * Queries are written once with drizzle's `sql` template, which renders the right placeholders for
 * each engine. Transactions take an async callback on both engines: SQLite has a single connection,
 * so every statement and transaction goes through one async mutex and nothing issued elsewhere can
 * land inside (and be rolled back with) someone else's transaction.
 */
import BetterSqlite3 from 'better-sqlite3';
import { type SQL } from 'drizzle-orm';
import { LRUCache } from 'lru-cache';
import { PgDialect } from 'drizzle-orm/pg-core';
import { SQLiteSyncDialect } from 'drizzle-orm/sqlite-core';
import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import postgres from 'postgres';
import { z } from 'zod';
import { SpanKind } from '@opentelemetry/api';
import { ConfigError, ValidationError } from '../errors.js';
import { telemetryActive } from '../telemetry.js';
import { withSpan } from '../tracing.js';
import { unlessUnavailable } from './unavailable.js';

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
  /**
   * A named schema, created if missing: a PostgreSQL schema, or on SQLite a database file attached under
   * that name (in memory for `sqlite::memory:`). Statements through the returned view may name its tables
   * `"<name>".<table>`; on SQLite the view attaches the file before each statement or transaction
   * (SQLite attaches at most 10 databases, so the least recently used file is detached when needed).
   */
  schema(name: string): Promise<Database>;
  /** Deletes a named schema and everything in it. */
  dropSchema(name: string): Promise<void>;
}

/** Schema names are plain identifiers, so they can be quoted into SQL text safely. */
export function assertSchemaName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new ConfigError(`invalid schema name ${JSON.stringify(name)}`);
  return name;
}

/** SQLite's compile-time limit on attached databases (SQLITE_MAX_ATTACHED in better-sqlite3). */
const SQLITE_MAX_ATTACHED = 10;

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

/** The SQL verb of a statement (`SELECT`, `INSERT`, …) for span names; never the text or its values. */
function operationOf(text: string): string {
  return /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
}

/** CLIENT spans around every statement, only while telemetry exports (no cost otherwise). */
function traced(inner: Queryable): Queryable {
  const system = inner.dialect === 'postgres' ? 'postgresql' : 'sqlite';
  const textOf = (query: SQL) => (inner.dialect === 'postgres' ? pgDialect : sqliteDialect).sqlToQuery(query).sql;
  const span = <T>(text: () => string, work: () => Promise<T>): Promise<T> => {
    if (!telemetryActive()) return work();
    const operation = operationOf(text());
    return withSpan(operation, work, { 'db.system.name': system, 'db.operation.name': operation }, SpanKind.CLIENT);
  };
  return {
    dialect: inner.dialect,
    all: (query) =>
      span(
        () => textOf(query),
        () => inner.all(query),
      ),
    run: (query) =>
      span(
        () => textOf(query),
        () => inner.run(query),
      ),
    exec: (text) =>
      span(
        () => text,
        () => inner.exec(text),
      ),
  };
}

/** How many prepared statements a SQLite connection keeps (the products use a few dozen texts per schema). */
export const SQLITE_STATEMENT_CACHE_SIZE = 500;

/**
 * Prepares each SQL text once per connection (least recently used dropped beyond `max`): preparing
 * costs more than running a small statement. SQLite re-prepares a kept statement by itself after a
 * schema change.
 */
export class StatementCache {
  readonly #statements: LRUCache<string, BetterSqlite3.Statement>;
  prepared = 0;

  constructor(
    readonly connection: BetterSqlite3.Database,
    max = SQLITE_STATEMENT_CACHE_SIZE,
  ) {
    this.#statements = new LRUCache({ max });
  }

  get(text: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.connection.prepare(text);
      this.prepared += 1;
      this.#statements.set(text, statement);
    }
    return statement;
  }

  get size(): number {
    return this.#statements.size;
  }
}

function sqliteQueryable(statements: StatementCache): Queryable {
  return traced({
    dialect: 'sqlite',
    async all<T extends Row>(query: SQL) {
      const { sql: text, params } = sqliteDialect.sqlToQuery(query);
      refuseNul(params);
      return unlessUnavailable(async () => {
        const statement = statements.get(text);
        return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
      });
    },
    async run(query: SQL) {
      const { sql: text, params } = sqliteDialect.sqlToQuery(query);
      refuseNul(params);
      return unlessUnavailable(async () => statements.get(text).run(...params).changes);
    },
    async exec(text: string) {
      await unlessUnavailable(async () => statements.connection.exec(text));
    },
  });
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
  const direct = sqliteQueryable(new StatementCache(connection));
  let closed = false;
  const inMemory = path === ':memory:';
  const schemaDir = inMemory ? '' : join(dirname(path), `${basename(path, extname(path))}-schemas`);
  const schemaFile = (name: string) => (inMemory ? ':memory:' : join(schemaDir, `${name}.sqlite`));
  /** Attached schemas, least recently used first. */
  const attached = new Set<string>();

  /** Runs under the mutex and outside any transaction (SQLite refuses ATTACH inside one). */
  const attach = (name: string) => {
    if (attached.delete(name)) return void attached.add(name);
    if (attached.size >= SQLITE_MAX_ATTACHED) {
      // An in-memory schema would lose its data when detached.
      if (inMemory) throw new ConfigError(`in-memory SQLite holds at most ${SQLITE_MAX_ATTACHED} schemas`);
      const oldest = attached.values().next().value as string;
      connection.exec(`DETACH DATABASE "${oldest}"`);
      attached.delete(oldest);
    }
    if (!inMemory) mkdirSync(schemaDir, { recursive: true });
    connection.prepare(`ATTACH DATABASE ? AS "${name}"`).run(schemaFile(name));
    if (!inMemory) {
      connection.pragma(`"${name}".journal_mode = WAL`);
      connection.pragma(`"${name}".synchronous = NORMAL`);
    }
    attached.add(name);
  };

  const transaction =
    (name?: string) =>
    <T>(work: (tx: Queryable) => Promise<T>): Promise<T> =>
      mutex.lock(async () => {
        if (name !== undefined) attach(name);
        connection.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(direct);
          connection.exec('COMMIT');
          return result;
        } catch (error) {
          if (connection.inTransaction) connection.exec('ROLLBACK');
          throw error;
        }
      });

  const view = (name?: string): Database => {
    const locked = <T>(work: () => Promise<T>) =>
      mutex.lock(async () => {
        if (name !== undefined) attach(name);
        return work();
      });
    return {
      dialect: 'sqlite',
      all: (query) => locked(() => direct.all(query)),
      run: (query) => locked(() => direct.run(query)),
      exec: (text) => locked(() => direct.exec(text)),
      transaction: transaction(name),
      async ping() {
        if (closed) throw new Error('database is closed');
        await mutex.lock(async () => void connection.prepare('SELECT 1').get());
      },
      async close() {
        if (closed) return;
        closed = true;
        await mutex.lock(async () => void connection.close());
      },
      async schema(schema) {
        assertSchemaName(schema);
        await mutex.lock(async () => attach(schema));
        return view(schema);
      },
      async dropSchema(schema) {
        assertSchemaName(schema);
        await mutex.lock(async () => {
          if (attached.delete(schema)) connection.exec(`DETACH DATABASE "${schema}"`);
          if (!inMemory) {
            for (const suffix of ['', '-wal', '-shm']) rmSync(`${schemaFile(schema)}${suffix}`, { force: true });
          }
        });
      },
    };
  };
  return view();
}

/**
 * PostgreSQL text cannot hold NUL, and a parameter with one fails the whole statement (a 500). It can never
 * match or be stored there, so it is refused as the client's mistake (400 invalid_characters), on SQLite too,
 * so that both engines accept the same data.
 */
function refuseNul(params: unknown[]): void {
  if (params.some((param) => typeof param === 'string' && param.includes('\u0000'))) {
    throw new ValidationError('Text with a NUL character cannot be stored or searched.', {
      code: 'invalid_characters',
    });
  }
}

function postgresQueryable(client: postgres.Sql | postgres.TransactionSql): Queryable {
  return traced({
    dialect: 'postgres',
    async all<T extends Row>(query: SQL) {
      const { sql: text, params } = pgDialect.sqlToQuery(query);
      refuseNul(params);
      return unlessUnavailable(
        async () =>
          (await client.unsafe(text, params as postgres.ParameterOrJSON<never>[], {
            prepare: true,
          })) as unknown as T[],
      );
    },
    async run(query: SQL) {
      const { sql: text, params } = pgDialect.sqlToQuery(query);
      refuseNul(params);
      return unlessUnavailable(
        async () => (await client.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })).count,
      );
    },
    async exec(text: string) {
      await unlessUnavailable(() => client.unsafe(text));
    },
  });
}

function openPostgres(url: string, config: z.output<typeof databaseConfigSchema>): Database {
  const client = postgres(url, {
    max: config.pool_size,
    connect_timeout: config.connect_timeout_seconds,
    onnotice: () => undefined,
    ...(config.schema ? { connection: { search_path: config.schema } } : {}),
  });
  const direct = postgresQueryable(client);
  const created = new Set<string>();
  const db: Database = {
    ...direct,
    async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      return unlessUnavailable(async () => (await client.begin((tx) => work(postgresQueryable(tx)))) as T);
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
    // Statements name the schema's tables explicitly, so the view is the database itself.
    async schema(name) {
      assertSchemaName(name);
      if (!created.has(name)) {
        await client.unsafe(`CREATE SCHEMA IF NOT EXISTS "${name}"`).catch((error: { code?: string }) => {
          // Two instances creating the same schema at once: the loser sees a duplicate, which is fine.
          if (error.code !== '42P06' && error.code !== '23505') throw error;
        });
        created.add(name);
      }
      return db;
    },
    async dropSchema(name) {
      assertSchemaName(name);
      await client.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      created.delete(name);
    },
  };
  return db;
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
