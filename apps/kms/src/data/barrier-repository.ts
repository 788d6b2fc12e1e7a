/** Rows of the barrier tiers. Each wrapped key is a JWE whose `kid` names the key it is wrapped under. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface WrappedKeyRow {
  id: string;
  parentId: string;
  jwe: string;
}

export type ChildTier = 'intermediate' | 'content';

const TABLES = {
  intermediate: { table: sql.raw('kms_intermediate_keys'), parent: sql.raw('root_key_id') },
  content: { table: sql.raw('kms_content_keys'), parent: sql.raw('intermediate_key_id') },
} as const;

export async function countRootKeys(db: Queryable): Promise<number> {
  const [row] = await db.all<{ n: number | string }>(sql`SELECT COUNT(*) AS n FROM kms_root_keys`);
  return Number(row?.n ?? 0);
}

/** Every wrap of every root key under one of the given unseal keys, newest root first. */
export async function rootKeyWraps(db: Queryable, unsealKeyIds: readonly string[]): Promise<WrappedKeyRow[]> {
  if (unsealKeyIds.length === 0) return [];
  const ids = sql.join(
    unsealKeyIds.map((id) => sql`${id}`),
    sql`, `,
  );
  const rows = await db.all<{ root_key_id: string; unseal_key_id: string; jwe: string }>(
    sql`SELECT root_key_id, unseal_key_id, jwe FROM kms_root_key_wraps WHERE unseal_key_id IN (${ids}) ORDER BY root_key_id DESC`,
  );
  return rows.map((row) => ({ id: row.root_key_id, parentId: row.unseal_key_id, jwe: row.jwe }));
}

export async function insertRootKey(
  db: Queryable,
  id: string,
  wraps: readonly { unsealKeyId: string; jwe: string }[],
  now: string,
): Promise<void> {
  await db.run(sql`INSERT INTO kms_root_keys (id, created_at) VALUES (${id}, ${now})`);
  for (const wrap of wraps) {
    await db.run(
      sql`INSERT INTO kms_root_key_wraps (root_key_id, unseal_key_id, jwe) VALUES (${id}, ${wrap.unsealKeyId}, ${wrap.jwe})`,
    );
  }
}

export async function insertWrappedKey(db: Queryable, tier: ChildTier, row: WrappedKeyRow, now: string): Promise<void> {
  const { table, parent } = TABLES[tier];
  await db.run(
    sql`INSERT INTO ${table} (id, ${parent}, jwe, created_at) VALUES (${row.id}, ${row.parentId}, ${row.jwe}, ${now})`,
  );
}

export async function findWrappedKey(db: Queryable, tier: ChildTier, id: string): Promise<WrappedKeyRow | undefined> {
  const { table, parent } = TABLES[tier];
  const [row] = await db.all<{ id: string; parent_id: string; jwe: string }>(
    sql`SELECT id, ${parent} AS parent_id, jwe FROM ${table} WHERE id = ${id}`,
  );
  return row ? { id: row.id, parentId: row.parent_id, jwe: row.jwe } : undefined;
}

/** The newest key of a tier: new keys are wrapped under it. */
export async function latestWrappedKey(db: Queryable, tier: ChildTier): Promise<WrappedKeyRow | undefined> {
  const { table, parent } = TABLES[tier];
  const [row] = await db.all<{ id: string; parent_id: string; jwe: string }>(
    sql`SELECT id, ${parent} AS parent_id, jwe FROM ${table} ORDER BY id DESC LIMIT 1`,
  );
  return row ? { id: row.id, parentId: row.parent_id, jwe: row.jwe } : undefined;
}

export async function countWrappedKeys(db: Queryable, tier: ChildTier): Promise<number> {
  const [row] = await db.all<{ n: number | string }>(sql`SELECT COUNT(*) AS n FROM ${TABLES[tier].table}`);
  return Number(row?.n ?? 0);
}
