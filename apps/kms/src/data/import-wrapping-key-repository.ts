/**
 * Rows of a tenant's import wrapping keys (BYOK): the RSA key pair as a JWE under a content key, its
 * public half in clear. `generation` is unique, so instances racing to create the first key insert one.
 */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { TenantTables } from './tenant-tables.js';

export interface ImportWrappingKeyRecord {
  /** The key's `kid` (UUIDv7). */
  id: string;
  generation: number;
  /** The private JWK as a JWE under a content key. */
  jwe: string;
  clearPublic: string;
  createdAt: string;
}

type Row = {
  id: string;
  generation: number | string;
  jwe: string;
  clear_public: string;
  created_at: string;
};

const COLUMNS = sql.raw('id, generation, jwe, clear_public, created_at');

function toRecord(row: Row): ImportWrappingKeyRecord {
  return {
    id: row.id,
    generation: Number(row.generation),
    jwe: row.jwe,
    clearPublic: row.clear_public,
    createdAt: row.created_at,
  };
}

/** Inserts the key unless one of its generation exists; returns whether this one was stored. */
export async function insertImportWrappingKeyIfAbsent(
  db: Queryable,
  t: TenantTables,
  key: ImportWrappingKeyRecord & { contentKeyId: string },
): Promise<boolean> {
  const inserted = await db.run(sql`INSERT INTO ${t.importWrappingKeys} (${COLUMNS}, content_key_id)
    VALUES (${key.id}, ${key.generation}, ${key.jwe}, ${key.clearPublic}, ${key.createdAt}, ${key.contentKeyId})
    ON CONFLICT (generation) DO NOTHING`);
  return inserted > 0;
}

/** The newest generation: the key callers wrap to. */
export async function currentImportWrappingKey(
  db: Queryable,
  t: TenantTables,
): Promise<ImportWrappingKeyRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.importWrappingKeys} ORDER BY generation DESC LIMIT 1`);
  return row ? toRecord(row) : undefined;
}

export async function findImportWrappingKey(
  db: Queryable,
  t: TenantTables,
  id: string,
): Promise<ImportWrappingKeyRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.importWrappingKeys} WHERE id = ${id}`);
  return row ? toRecord(row) : undefined;
}
