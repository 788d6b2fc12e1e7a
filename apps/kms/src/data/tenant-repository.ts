/** Registered tenants (main schema) and the one-time move of pre-tenant keys into the default tenant. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { TenantTables } from './tenant-tables.js';

export interface TenantRecord {
  id: string;
  name: string;
  createdAt: string;
}

type Row = { id: string; name: string; created_at: string };

const toRecord = (row: Row): TenantRecord => ({ id: row.id, name: row.name, createdAt: row.created_at });

export async function insertTenant(db: Queryable, tenant: TenantRecord): Promise<void> {
  await db.run(
    sql`INSERT INTO kms_tenants (id, name, created_at) VALUES (${tenant.id}, ${tenant.name}, ${tenant.createdAt})`,
  );
}

export async function findTenant(db: Queryable, id: string): Promise<TenantRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT id, name, created_at FROM kms_tenants WHERE id = ${id}`);
  return row ? toRecord(row) : undefined;
}

export async function findTenantByName(db: Queryable, name: string): Promise<TenantRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT id, name, created_at FROM kms_tenants WHERE name = ${name}`);
  return row ? toRecord(row) : undefined;
}

export async function listTenants(db: Queryable): Promise<TenantRecord[]> {
  return (await db.all<Row>(sql`SELECT id, name, created_at FROM kms_tenants ORDER BY created_at, id`)).map(toRecord);
}

export async function deleteTenant(db: Queryable, id: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_tenants WHERE id = ${id}`);
}

async function legacyTablesExist(db: Queryable): Promise<boolean> {
  const rows =
    db.dialect === 'postgres'
      ? await db.all(sql`SELECT 1 FROM pg_tables WHERE tablename = ${'kms_elastic_keys'}
          AND schemaname = current_schema()`)
      : await db.all(sql`SELECT 1 FROM main.sqlite_master WHERE type = ${'table'} AND name = ${'kms_elastic_keys'}`);
  return rows.length > 0;
}

/**
 * Keys stored before tenants existed (one shared table) move, unchanged but numbered as versions, into
 * the default tenant, and the old tables go. Runs in one transaction; a no-op once done.
 */
export async function adoptUntenantedKeys(db: Queryable, into: TenantTables): Promise<number> {
  if (!(await legacyTablesExist(db))) return 0;
  const columns = sql.raw(
    'id, elastic_key_id, content_key_id, jwe, clear_public, generate_date, import_date, expiration_date, revocation_date',
  );
  const keyColumns = sql.raw(
    'id, name, description, provider, algorithm, versioning_allowed, import_allowed, status, created_at, updated_at, delete_after',
  );
  const moved = await db.run(
    sql`INSERT INTO ${into.elasticKeys} (${keyColumns}) SELECT ${keyColumns} FROM kms_elastic_keys`,
  );
  // Versions in creation order per elastic key (ids are UUIDv7).
  await db.run(sql`INSERT INTO ${into.materialKeys} (${columns}, version) SELECT ${columns},
    (SELECT COUNT(*) FROM kms_material_keys older
      WHERE older.elastic_key_id = kms_material_keys.elastic_key_id AND older.id <= kms_material_keys.id)
    FROM kms_material_keys`);
  await db.exec('DROP TABLE kms_material_keys; DROP TABLE kms_elastic_keys;');
  return moved;
}
