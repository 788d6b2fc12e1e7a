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
  /** Versions below it refuse decrypt and verify (1: every version works). */
  minDecryptionVersion: number;
  /** The lowest version a caller may ask to encrypt or sign with (0: only the latest). */
  minEncryptionVersion: number;
  /** ISO 8601 duration after which the scheduler adds a version; null: no automatic rotation. */
  rotationPeriod: string | null;
  /** Encryptions per version set on this key; null: the algorithm's default bound. */
  maxEncryptions: number | null;
  materialKeyCount: number;
  /** The highest version number (0 when the key has no material yet). */
  latestVersion: number;
}

/** The columns a new elastic key is inserted with (the version settings take their defaults). */
export type NewElasticKeyRecord = Omit<
  ElasticKeyRecord,
  | 'materialKeyCount'
  | 'latestVersion'
  | 'minDecryptionVersion'
  | 'minEncryptionVersion'
  | 'rotationPeriod'
  | 'maxEncryptions'
>;

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
  min_decryption_version: number | string;
  min_encryption_version: number | string;
  rotation_period: string | null;
  max_encryptions: number | string | null;
  material_key_count: number | string;
  latest_version: number | string | null;
};

const select = (t: TenantTables) =>
  sql`SELECT e.*, (SELECT COUNT(*) FROM ${t.materialKeys} m WHERE m.elastic_key_id = e.id) AS material_key_count,
    (SELECT MAX(m.version) FROM ${t.materialKeys} m WHERE m.elastic_key_id = e.id) AS latest_version
    FROM ${t.elasticKeys} e`;

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
    minDecryptionVersion: Number(row.min_decryption_version),
    minEncryptionVersion: Number(row.min_encryption_version),
    rotationPeriod: row.rotation_period,
    maxEncryptions: row.max_encryptions === null ? null : Number(row.max_encryptions),
    materialKeyCount: Number(row.material_key_count),
    latestVersion: Number(row.latest_version ?? 0),
  };
}

export async function insertElasticKey(db: Queryable, t: TenantTables, key: NewElasticKeyRecord): Promise<void> {
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

export type ElasticKeyChanges = Partial<
  Pick<
    ElasticKeyRecord,
    | 'name'
    | 'description'
    | 'status'
    | 'deleteAfter'
    | 'minDecryptionVersion'
    | 'minEncryptionVersion'
    | 'rotationPeriod'
    | 'maxEncryptions'
  >
> & {
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
    minDecryptionVersion: 'min_decryption_version',
    minEncryptionVersion: 'min_encryption_version',
    rotationPeriod: 'rotation_period',
    maxEncryptions: 'max_encryptions',
    updatedAt: 'updated_at',
  };
  const assignments = Object.entries(changes)
    .filter(([, value]) => value !== undefined)
    .map(
      ([field, value]) =>
        sql`${sql.raw(columns[field as keyof ElasticKeyChanges])} = ${value as string | number | null}`,
    );
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

/**
 * Takes the row lock of an elastic key for the rest of the transaction (PostgreSQL; SQLite's write
 * transactions are serialized anyway), so that reading the latest version and adding the next one
 * cannot interleave with another transaction doing the same. Returns false if the key does not exist.
 */
export async function lockElasticKey(db: Queryable, t: TenantTables, id: string): Promise<boolean> {
  return (await db.run(sql`UPDATE ${t.elasticKeys} SET updated_at = updated_at WHERE id = ${id}`)) === 1;
}

export interface RotationCandidate {
  id: string;
  rotationPeriod: string;
  /** The latest usable (not revoked, not destroyed) version, 0 if none. */
  latestVersion: number;
  /** When that version was generated or imported (null: the key has no usable version). */
  latestVersionDate: string | null;
}

/** Active keys with a rotation period, each with its latest usable version and that version's date. */
export async function rotationCandidates(db: Queryable, t: TenantTables): Promise<RotationCandidate[]> {
  const rows = await db.all<{
    id: string;
    rotation_period: string;
    latest_version: number | string | null;
    latest_date: string | null;
  }>(sql`SELECT e.id, e.rotation_period, m.version AS latest_version,
      COALESCE(m.generate_date, m.import_date) AS latest_date
    FROM ${t.elasticKeys} e LEFT JOIN ${t.materialKeys} m ON m.elastic_key_id = e.id
      AND m.version = (SELECT MAX(v.version) FROM ${t.materialKeys} v
        WHERE v.elastic_key_id = e.id AND v.revocation_date IS NULL AND v.jwe IS NOT NULL)
    WHERE e.rotation_period IS NOT NULL AND e.status = ${'active'} AND e.versioning_allowed = 1`);
  return rows.map((row) => ({
    id: row.id,
    rotationPeriod: row.rotation_period,
    latestVersion: Number(row.latest_version ?? 0),
    latestVersionDate: row.latest_date,
  }));
}
