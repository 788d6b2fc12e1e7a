/** Elastic key rows. Booleans are stored as 0/1 on both engines. */
import { sql, type SQL } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { TenantTables } from './tenant-tables.js';
import type { ElasticKeyStatus } from '../domain/elastic-key-status.js';
import { inList, limitClause, orderClause, whereClause, type Page, type PageRequest } from './paging.js';

export interface ElasticKeyRecord {
  id: string;
  name: string;
  description: string;
  provider: string;
  algorithm: string;
  versioningAllowed: boolean;
  importAllowed: boolean;
  status: ElasticKeyStatus;
  createdAt: string;
  updatedAt: string;
  deleteAfter: string | null;
  materialKeyCount: number;
}

// A type alias (not an interface) so it satisfies the Row index signature of the database API.
type Row = {
  id: string;
  name: string;
  description: string;
  provider: string;
  algorithm: string;
  versioning_allowed: number;
  import_allowed: number;
  status: string;
  created_at: string;
  updated_at: string;
  delete_after: string | null;
  material_key_count: number | string;
};

const select = (t: TenantTables) =>
  sql`SELECT e.*, (SELECT COUNT(*) FROM ${t.materialKeys} m WHERE m.elastic_key_id = e.id) AS material_key_count FROM ${t.elasticKeys} e`;

function toRecord(row: Row): ElasticKeyRecord {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    provider: row.provider,
    algorithm: row.algorithm,
    versioningAllowed: Number(row.versioning_allowed) === 1,
    importAllowed: Number(row.import_allowed) === 1,
    status: row.status as ElasticKeyStatus,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deleteAfter: row.delete_after,
    materialKeyCount: Number(row.material_key_count),
  };
}

export async function insertElasticKey(
  db: Queryable,
  t: TenantTables,
  key: Omit<ElasticKeyRecord, 'materialKeyCount'>,
): Promise<void> {
  await db.run(sql`INSERT INTO ${t.elasticKeys}
    (id, name, description, provider, algorithm, versioning_allowed, import_allowed, status, created_at, updated_at, delete_after)
    VALUES (${key.id}, ${key.name}, ${key.description}, ${key.provider}, ${key.algorithm}, ${key.versioningAllowed ? 1 : 0},
      ${key.importAllowed ? 1 : 0}, ${key.status}, ${key.createdAt}, ${key.updatedAt}, ${key.deleteAfter})`);
}

export async function findElasticKey(
  db: Queryable,
  t: TenantTables,
  id: string,
): Promise<ElasticKeyRecord | undefined> {
  const [row] = await db.all<Row>(sql`${select(t)} WHERE e.id = ${id}`);
  return row ? toRecord(row) : undefined;
}

export type ElasticKeyChanges = Partial<Pick<ElasticKeyRecord, 'name' | 'description' | 'status' | 'deleteAfter'>> & {
  updatedAt: string;
};

export async function updateElasticKey(
  db: Queryable,
  t: TenantTables,
  id: string,
  changes: ElasticKeyChanges,
): Promise<void> {
  const columns: Record<keyof ElasticKeyChanges, string> = {
    name: 'name',
    description: 'description',
    status: 'status',
    deleteAfter: 'delete_after',
    updatedAt: 'updated_at',
  };
  const assignments = Object.entries(changes)
    .filter(([, value]) => value !== undefined)
    .map(([field, value]) => sql`${sql.raw(columns[field as keyof ElasticKeyChanges])} = ${value as string | null}`);
  await db.run(sql`UPDATE ${t.elasticKeys} SET ${sql.join(assignments, sql`, `)} WHERE id = ${id}`);
}

export interface ElasticKeyFilter {
  elasticKeyIds?: readonly string[];
  names?: readonly string[];
  providers?: readonly string[];
  algorithms?: readonly string[];
  versioningAllowed?: boolean;
  importAllowed?: boolean;
  statuses?: readonly string[];
}

const SORT_COLUMNS: Record<string, string> = {
  elastic_key_id: 'e.id',
  name: 'e.name',
  description: 'e.description',
  provider: 'e.provider',
  algorithm: 'e.algorithm',
  versioning_allowed: 'e.versioning_allowed',
  import_allowed: 'e.import_allowed',
  status: 'e.status',
  created_at: 'e.created_at',
  updated_at: 'e.updated_at',
};
export const ELASTIC_KEY_SORT_FIELDS = Object.keys(SORT_COLUMNS);

export async function listElasticKeys(
  db: Queryable,
  t: TenantTables,
  filter: ElasticKeyFilter,
  page: PageRequest,
): Promise<Page<ElasticKeyRecord>> {
  const conditions: SQL[] = [];
  const lists: [string, readonly string[] | undefined][] = [
    ['e.id', filter.elasticKeyIds],
    ['e.name', filter.names],
    ['e.provider', filter.providers],
    ['e.algorithm', filter.algorithms],
    ['e.status', filter.statuses],
  ];
  for (const [column, values] of lists) if (values && values.length > 0) conditions.push(inList(column, values));
  if (filter.versioningAllowed !== undefined)
    conditions.push(sql`e.versioning_allowed = ${filter.versioningAllowed ? 1 : 0}`);
  if (filter.importAllowed !== undefined) conditions.push(sql`e.import_allowed = ${filter.importAllowed ? 1 : 0}`);
  const where = whereClause(conditions);
  const [count] = await db.all<{ n: number | string }>(sql`SELECT COUNT(*) AS n FROM ${t.elasticKeys} e${where}`);
  const rows = await db.all<Row>(
    sql`${select(t)}${where}${orderClause(page.sort, SORT_COLUMNS, 'e.id')}${limitClause(page)}`,
  );
  return { items: rows.map(toRecord), page: page.page, size: page.size, total: Number(count?.n ?? 0) };
}

/** Keys whose deletion grace period is over. */
export async function elasticKeysDueForDestroy(
  db: Queryable,
  t: TenantTables,
  now: string,
): Promise<ElasticKeyRecord[]> {
  const rows = await db.all<Row>(
    sql`${select(t)} WHERE e.status LIKE ${'pending_delete_was_%'} AND e.delete_after IS NOT NULL AND e.delete_after <= ${now}`,
  );
  return rows.map(toRecord);
}
