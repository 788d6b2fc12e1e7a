/**
 * One migration runner for both engines. A migration is portable SQL or one text per dialect; each is
 * recorded with a checksum in `schema_migrations`, so it runs once and an edited migration is refused.
 * The whole run is one transaction; on PostgreSQL an advisory lock serializes instances starting together.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { assertSchemaName, type Database, type Dialect } from './database.js';

export interface Migration {
  /** Sortable id, e.g. `0001_create_elastic_keys`. */
  id: string;
  /** Portable SQL, one text per dialect, or (for named schemas) a text made for the dialect and schema. */
  sql: string | Record<Dialect, string> | ((dialect: Dialect, schema: string) => string);
}

export class MigrationError extends Error {
  readonly code = 'migration_changed';
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const LOCK_ID = 727_001; // arbitrary, constant across instances

function textFor(migration: Migration, dialect: Dialect, schema: string | undefined): string {
  if (typeof migration.sql === 'string') return migration.sql;
  if (typeof migration.sql !== 'function') return migration.sql[dialect];
  if (schema === undefined) throw new MigrationError(`migration ${migration.id} needs a schema`);
  return migration.sql(dialect, schema);
}

function checksum(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Applies the migrations not yet applied, in id order; returns the ids it applied. With `schema`, the
 * record table lives in that named schema (see `Database.schema`) and schema-made texts get its name.
 */
export async function migrate(
  db: Database,
  migrations: readonly Migration[],
  options: { schema?: string } = {},
): Promise<string[]> {
  const ordered = [...migrations].sort((a, b) => a.id.localeCompare(b.id));
  const { schema } = options;
  const table = sql.raw(schema === undefined ? 'schema_migrations' : `"${assertSchemaName(schema)}".schema_migrations`);
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.all(sql`SELECT pg_advisory_xact_lock(${LOCK_ID})`);
    await tx.run(
      sql`CREATE TABLE IF NOT EXISTS ${table} (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`,
    );
    const applied = new Map(
      (await tx.all<{ id: string; checksum: string }>(sql`SELECT id, checksum FROM ${table}`)).map((row) => [
        row.id,
        row.checksum,
      ]),
    );
    const done: string[] = [];
    for (const migration of ordered) {
      const text = textFor(migration, tx.dialect, schema);
      const sum = checksum(text);
      const previous = applied.get(migration.id);
      if (previous !== undefined) {
        if (previous !== sum) throw new MigrationError(`migration ${migration.id} changed after it was applied`);
        continue;
      }
      await tx.exec(text);
      await tx.run(
        sql`INSERT INTO ${table} (id, checksum, applied_at) VALUES (${migration.id}, ${sum}, ${new Date().toISOString()})`,
      );
      done.push(migration.id);
    }
    return done;
  });
}
