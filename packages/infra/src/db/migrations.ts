/**
 * One migration runner for both engines. A migration is portable SQL or one text per dialect; each is
 * recorded with a checksum in `schema_migrations`, so it runs once and an edited migration is refused.
 * The whole run is one transaction; on PostgreSQL an advisory lock serializes instances starting together.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database, Dialect } from './database.js';

export interface Migration {
  /** Sortable id, e.g. `0001_create_elastic_keys`. */
  id: string;
  sql: string | Record<Dialect, string>;
}

export class MigrationError extends Error {
  readonly code = 'migration_changed';
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const LOCK_ID = 727_001; // arbitrary, constant across instances

function textFor(migration: Migration, dialect: Dialect): string {
  return typeof migration.sql === 'string' ? migration.sql : migration.sql[dialect];
}

function checksum(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Applies the migrations not yet applied, in id order; returns the ids it applied. */
export async function migrate(db: Database, migrations: readonly Migration[]): Promise<string[]> {
  const ordered = [...migrations].sort((a, b) => a.id.localeCompare(b.id));
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.all(sql`SELECT pg_advisory_xact_lock(${LOCK_ID})`);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = new Map(
      (await tx.all<{ id: string; checksum: string }>(sql`SELECT id, checksum FROM schema_migrations`)).map((row) => [
        row.id,
        row.checksum,
      ]),
    );
    const done: string[] = [];
    for (const migration of ordered) {
      const text = textFor(migration, tx.dialect);
      const sum = checksum(text);
      const previous = applied.get(migration.id);
      if (previous !== undefined) {
        if (previous !== sum) throw new MigrationError(`migration ${migration.id} changed after it was applied`);
        continue;
      }
      await tx.exec(text);
      await tx.run(
        sql`INSERT INTO schema_migrations (id, checksum, applied_at) VALUES (${migration.id}, ${sum}, ${new Date().toISOString()})`,
      );
      done.push(migration.id);
    }
    return done;
  });
}
