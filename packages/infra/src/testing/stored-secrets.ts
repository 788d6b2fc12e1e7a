/**
 * Secret hygiene at rest (issue #10): reads every column of every table and reports each value that
 * contains one of the given secrets (passwords, keys, plaintexts, tokens a test used). Text and binary
 * values are both searched (binary as UTF-8), so a secret stored in any column, encoded as itself, is found.
 */
import { sql } from 'drizzle-orm';
import type { Database } from '../db/database.js';

/** Secrets shorter than this would match by chance. */
const SHORTEST = 6;

/**
 * Every finding as `<schema>.<table>.<column> contains a known secret`; empty when none is stored.
 * `schemas` are PostgreSQL schemas to read; on SQLite the database's own (main) tables are read.
 */
export async function storedSecretFindings(
  db: Database,
  secrets: Iterable<string>,
  schemas: readonly string[] = [],
): Promise<string[]> {
  const known = [...new Set(secrets)].filter((secret) => secret.length >= SHORTEST);
  const findings: string[] = [];
  for (const table of await tablesOf(db, schemas)) {
    const rows = await db.all(sql.raw(`SELECT * FROM ${table}`));
    const columns = new Set<string>();
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        const text = asText(value);
        if (text !== undefined && known.some((secret) => text.includes(secret))) columns.add(column);
      }
    }
    for (const column of columns) findings.push(`${table}.${column} contains a known secret`);
  }
  return findings;
}

/** Quoted table names to read. */
async function tablesOf(db: Database, schemas: readonly string[]): Promise<string[]> {
  if (db.dialect === 'sqlite') {
    const rows = await db.all<{ name: string }>(
      sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
    );
    return rows.map((row) => `"${row.name}"`);
  }
  if (schemas.length === 0) return [];
  const rows = await db.all<{ table_schema: string; table_name: string }>(
    sql`SELECT table_schema, table_name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema IN (${sql.join(
        schemas.map((schema) => sql`${schema}`),
        sql`, `,
      )})`,
  );
  return rows.map((row) => `"${row.table_schema}"."${row.table_name}"`);
}

function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return undefined;
}
