import BetterSqlite3 from 'better-sqlite3';
import express from 'express';
import { sql } from 'drizzle-orm';
import net from 'node:net';
import request from 'supertest';
import { POSTGRES_AVAILABLE_SYNC, describeEachDatabase, testPostgresUrl, uniquePrefix } from '../testing/index.js';
import {
  ConfigError,
  MigrationError,
  createAdminRouter,
  databaseCheck,
  isUniqueViolation,
  memoryCheck,
  StatementCache,
  migrate,
  openDatabase,
  type Migration,
} from '../index.js';

const migrations: Migration[] = [
  {
    id: '0001_create_widgets',
    sql: {
      sqlite:
        'CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, payload BLOB, enabled INTEGER NOT NULL)',
      postgres:
        'CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, payload BYTEA, enabled BOOLEAN NOT NULL)',
    },
  },
  {
    id: '0002_index_widgets',
    sql: 'CREATE INDEX widgets_by_name ON widgets (name); CREATE TABLE notes (id TEXT PRIMARY KEY)',
  },
];

describeEachDatabase('database', (ctx) => {
  it('runs the same migrations, once, and refuses an edited one', async () => {
    const db = await ctx.open();
    expect(await migrate(db, migrations)).toEqual(['0001_create_widgets', '0002_index_widgets']);
    expect(await migrate(db, migrations)).toEqual([]);
    const rows = await db.all<{ id: string }>(sql`SELECT id FROM schema_migrations ORDER BY id`);
    expect(rows.map((row) => row.id)).toEqual(['0001_create_widgets', '0002_index_widgets']);
    const edited = [{ ...migrations[1]!, sql: 'CREATE TABLE other (id TEXT)' }];
    await expect(migrate(db, edited)).rejects.toBeInstanceOf(MigrationError);
  });

  it('lets an older version start on a database a newer one migrated (rolling upgrade)', async () => {
    const db = await ctx.open();
    await migrate(db, migrations); // (on PostgreSQL the suite's schema may be migrated already)
    // The previous release knows only the first migration: it starts and applies nothing.
    expect(await migrate(db, migrations.slice(0, 1))).toEqual([]);
    await db.run(
      sql`INSERT INTO widgets (id, name, enabled) VALUES (${'old'}, ${uniquePrefix('old')}, ${ctx.dialect === 'sqlite' ? 1 : true})`,
    );
  });

  it('inserts and reads rows with bytes, and detects unique violations', async () => {
    const db = await ctx.open(migrations);
    const name = uniquePrefix('widget');
    const enabled = ctx.dialect === 'sqlite' ? 1 : true;
    await db.run(
      sql`INSERT INTO widgets (id, name, payload, enabled) VALUES (${'w1'}, ${name}, ${Buffer.from([1, 2, 3])}, ${enabled})`,
    );
    const [row] = await db.all<{ name: string; payload: Buffer }>(
      sql`SELECT name, payload FROM widgets WHERE id = ${'w1'}`,
    );
    expect(row?.name).toBe(name);
    expect(Buffer.from(row!.payload)).toEqual(Buffer.from([1, 2, 3]));
    const duplicate = db.run(sql`INSERT INTO widgets (id, name, enabled) VALUES (${'w2'}, ${name}, ${enabled})`);
    const error = await duplicate.catch((caught: unknown) => caught);
    expect(isUniqueViolation(error)).toBe(true);
    expect(isUniqueViolation(new Error('other'))).toBe(false);
    expect(await db.run(sql`DELETE FROM widgets WHERE id = ${'w1'}`)).toBe(1);
  });

  it('rolls a failed transaction back and keeps concurrent statements out of it', async () => {
    const db = await ctx.open(migrations);
    const enabled = ctx.dialect === 'sqlite' ? 1 : true;
    let releaseTransaction!: () => void;
    const paused = new Promise<void>((resolve) => (releaseTransaction = resolve));
    const failing = db
      .transaction(async (tx) => {
        await tx.run(sql`INSERT INTO notes (id) VALUES (${'inside'})`);
        await paused;
        throw new Error('abort');
      })
      .catch((error: Error) => error.message);
    // Issued while the transaction is open: must not be swallowed by its rollback.
    const outside = db.run(sql`INSERT INTO notes (id) VALUES (${'outside'})`);
    releaseTransaction();
    expect(await failing).toBe('abort');
    await outside;
    const ids = (await db.all<{ id: string }>(sql`SELECT id FROM notes ORDER BY id`)).map((row) => row.id);
    expect(ids).toEqual(['outside']);
    const committed = await db.transaction(async (tx) => {
      await tx.run(sql`INSERT INTO widgets (id, name, enabled) VALUES (${'t1'}, ${uniquePrefix()}, ${enabled})`);
      return tx.all(sql`SELECT id FROM widgets WHERE id = ${'t1'}`);
    });
    expect(committed).toHaveLength(1);
  });

  it('keeps named schemas apart and drops them whole', async () => {
    const db = await ctx.open();
    const perSchema: Migration[] = [
      { id: '0001_items', sql: (_dialect, schema) => `CREATE TABLE "${schema}".items (id TEXT PRIMARY KEY)` },
    ];
    const [a, b] = [uniquePrefix('a'), uniquePrefix('b')].map((name) => name.replace(/-/g, '_').toLowerCase());
    for (const name of [a!, b!]) {
      expect(await migrate(await db.schema(name), perSchema, { schema: name })).toEqual(['0001_items']);
      expect(await migrate(await db.schema(name), perSchema, { schema: name })).toEqual([]);
    }
    const viewA = await db.schema(a!);
    await viewA.run(sql`INSERT INTO ${sql.raw(`"${a}".items`)} (id) VALUES (${'only-in-a'})`);
    const inB = await (await db.schema(b!)).all(sql`SELECT id FROM ${sql.raw(`"${b}".items`)}`);
    expect(inB).toEqual([]);
    expect(await viewA.all(sql`SELECT id FROM ${sql.raw(`"${a}".items`)}`)).toEqual([{ id: 'only-in-a' }]);
    await db.dropSchema(a!);
    await db.dropSchema(b!);
    const again = await db.schema(a!);
    await expect(again.all(sql`SELECT id FROM ${sql.raw(`"${a}".items`)}`)).rejects.toMatchObject({
      message: expect.stringMatching(/items/),
    });
    await db.dropSchema(a!);
    await expect(db.schema('Robert"); DROP TABLE x; --')).rejects.toBeInstanceOf(ConfigError);
    await expect(migrate(db, perSchema)).rejects.toBeInstanceOf(MigrationError);
  });

  it('serves liveness and readiness with the database check', async () => {
    const db = await ctx.open();
    const app = express().use(
      createAdminRouter({
        service: 'test',
        version: '1.0.0',
        checks: { database: databaseCheck(db), memory: memoryCheck(Number.MAX_SAFE_INTEGER) },
      }),
    );
    const live = await request(app).get('/admin/v1/livez');
    expect(live.body).toMatchObject({ status: 'ok', probe: 'liveness', service: 'test', version: '1.0.0' });
    const ready = await request(app).get('/admin/v1/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database).toMatchObject({ status: 'ok', dialect: ctx.dialect });
    expect(typeof ready.body.checks.database.latency_ms).toBe('number');
  });
});

describe('readiness follows the database', () => {
  it('turns 503 degraded when SQLite is closed', async () => {
    const db = await openDatabase({ url: 'sqlite::memory:' });
    const app = express().use(
      createAdminRouter({ service: 's', version: 'v', checks: { database: databaseCheck(db) } }),
    );
    expect((await request(app).get('/admin/v1/readyz')).status).toBe(200);
    await db.close();
    const degraded = await request(app).get('/admin/v1/readyz');
    expect(degraded.status).toBe(503);
    expect(degraded.body).toMatchObject({
      status: 'degraded',
      checks: { database: { status: 'error', error: 'check failed' } },
    });
  });

  const postgresIt = process.env.TEST_DATABASE_URL ? it : it.skip;
  postgresIt('turns 503 when PostgreSQL goes away and 200 when it returns', async () => {
    const target = new URL((await testPostgresUrl())!);
    const sockets = new Set<net.Socket>();
    const startProxy = (port: number) =>
      new Promise<net.Server>((resolve) => {
        const proxy = net.createServer((client) => {
          const upstream = net.connect(Number(target.port || 5432), target.hostname);
          for (const socket of [client, upstream]) {
            sockets.add(socket);
            socket.on('error', () => socket.destroy());
            socket.on('close', () => sockets.delete(socket));
          }
          client.pipe(upstream).pipe(client);
        });
        proxy.listen(port, '127.0.0.1', () => resolve(proxy));
      });
    let proxy = await startProxy(0);
    const port = (proxy.address() as net.AddressInfo).port;
    const url = `postgres://${target.username}@127.0.0.1:${port}${target.pathname}`;
    const db = await openDatabase({ url, pool_size: 1, connect_timeout_seconds: 1 });
    const app = express().use(
      createAdminRouter({
        service: 's',
        version: 'v',
        checks: { database: databaseCheck(db, 1000) },
        checkTimeoutMs: 1500,
      }),
    );
    try {
      expect((await request(app).get('/admin/v1/readyz')).status).toBe(200);
      const closed = new Promise((resolve) => proxy.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
      const gone = await request(app).get('/admin/v1/readyz');
      expect(gone.status).toBe(503);
      expect(gone.body.status).toBe('degraded');
      proxy = await startProxy(port);
      let back = await request(app).get('/admin/v1/readyz');
      for (let attempt = 0; attempt < 10 && back.status !== 200; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        back = await request(app).get('/admin/v1/readyz');
      }
      expect(back.status).toBe(200);
    } finally {
      await db.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('answers shutdown with 202 and then calls the hook', async () => {
    let called = false;
    const app = express().use(
      createAdminRouter({ service: 's', version: 'v', checks: {}, onShutdown: () => void (called = true) }),
    );
    expect((await request(app).post('/admin/v1/shutdown')).status).toBe(202);
    expect(called).toBe(true);
    const slow = express().use(
      createAdminRouter({
        service: 's',
        version: 'v',
        checks: { slow: () => new Promise(() => undefined) },
        checkTimeoutMs: 50,
      }),
    );
    const res = await request(slow).get('/admin/v1/readyz');
    expect(res.status).toBe(503);
    expect(res.body.checks.slow.error).toBe('no answer within 50 ms');
  });

  it('opens SQLite files with WAL, a busy timeout and enforced foreign keys', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const db = await openDatabase({
      url: `sqlite:${join(await mkdtemp(join(tmpdir(), 'sqlite-')), 'nested', 'x.sqlite')}`,
    });
    try {
      expect(await db.all(sql`PRAGMA journal_mode`)).toEqual([{ journal_mode: 'wal' }]);
      expect(await db.all(sql`PRAGMA foreign_keys`)).toEqual([{ foreign_keys: 1 }]);
      expect(await db.all(sql`PRAGMA busy_timeout`)).toEqual([{ timeout: 30000 }]);
      await db.exec(
        'CREATE TABLE parent (id TEXT PRIMARY KEY); CREATE TABLE child (parent_id TEXT REFERENCES parent (id))',
      );
      // The SqliteError may come from another jest realm, so match its message rather than its class.
      await expect(db.run(sql`INSERT INTO child (parent_id) VALUES (${'missing'})`)).rejects.toMatchObject({
        message: expect.stringMatching(/FOREIGN KEY/),
      });
    } finally {
      await db.close();
    }
  });

  it('attaches SQLite schema files on demand beyond the limit of ten, keeping their data', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const db = await openDatabase({ url: `sqlite:${join(await mkdtemp(join(tmpdir(), 'sqlite-')), 'main.sqlite')}` });
    const names = Array.from({ length: 12 }, (_, i) => `schema_${i}`);
    const perSchema: Migration[] = [
      { id: '0001_items', sql: (_dialect, schema) => `CREATE TABLE "${schema}".items (id TEXT PRIMARY KEY)` },
    ];
    try {
      for (const name of names) {
        const view = await db.schema(name);
        await migrate(view, perSchema, { schema: name });
        await view.run(sql`INSERT INTO ${sql.raw(`"${name}".items`)} (id) VALUES (${name})`);
      }
      // The first schemas were detached to make room; reading them attaches them again, data intact.
      for (const name of names) {
        const view = await db.schema(name);
        const rows = await view.transaction((tx) => tx.all(sql`SELECT id FROM ${sql.raw(`"${name}".items`)}`));
        expect(rows).toEqual([{ id: name }]);
      }
    } finally {
      await db.close();
    }
    const memory = await openDatabase({ url: 'sqlite::memory:' });
    for (const name of names.slice(0, 10)) await memory.schema(name);
    await expect(memory.schema('one_too_many')).rejects.toThrow(/at most 10 schemas/);
    await memory.close();
  });

  it('reports memory above its limit as degraded and below it as ok', async () => {
    const app = (limit: number) =>
      express().use(createAdminRouter({ service: 's', version: 'v', checks: { memory: memoryCheck(limit) } }));
    const over = await request(app(1)).get('/admin/v1/readyz');
    expect(over.status).toBe(503);
    expect(over.body.checks.memory).toMatchObject({ status: 'error', error: 'check failed' });
    const under = await request(app(Number.MAX_SAFE_INTEGER)).get('/admin/v1/readyz');
    expect(under.status).toBe(200);
    expect(typeof under.body.checks.memory.rss_bytes).toBe('number');
  });

  it('prepares each SQLite statement text once and keeps at most the newest few', () => {
    const connection = new BetterSqlite3(':memory:');
    const statements = new StatementCache(connection, 2);
    const one = statements.get('SELECT 1 AS n');
    expect(statements.get('SELECT 1 AS n')).toBe(one);
    expect(statements.prepared).toBe(1);
    statements.get('SELECT 2 AS n');
    statements.get('SELECT 3 AS n');
    expect(statements.size).toBe(2);
    expect(statements.get('SELECT 1 AS n')).not.toBe(one); // dropped as least recently used, prepared again
    expect(statements.prepared).toBe(4);
    // A kept statement follows a schema change (SQLite re-prepares it).
    connection.exec('CREATE TABLE t (a INTEGER)');
    const select = statements.get('SELECT * FROM t');
    connection.exec('ALTER TABLE t ADD COLUMN b INTEGER; INSERT INTO t VALUES (1, 2)');
    expect(statements.get('SELECT * FROM t')).toBe(select);
    expect(select.all()).toEqual([{ a: 1, b: 2 }]);
    connection.close();
  });

  (POSTGRES_AVAILABLE_SYNC ? it : it.skip)('prepares PostgreSQL statements once per connection', async () => {
    const db = await openDatabase({ url: (await testPostgresUrl())!, pool_size: 1 });
    try {
      const marker = uniquePrefix('prepared');
      for (let n = 0; n < 3; n++) await db.all(sql`SELECT ${n}::int AS n, ${marker}::text AS marker`);
      const prepared = await db.all<{ statement: string }>(
        sql`SELECT statement FROM pg_prepared_statements WHERE statement LIKE ${'%AS marker%'}`,
      );
      expect(prepared).toHaveLength(1);
    } finally {
      await db.close();
    }
  });

  it('refuses an unknown database URL scheme', async () => {
    await expect(openDatabase({ url: 'mysql://x' })).rejects.toBeInstanceOf(ConfigError);
  });
});
