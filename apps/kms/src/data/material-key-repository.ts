/** Material key rows: the key itself only as a JWE under a content key; the public half in clear. */
import { sql, type SQL } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { TenantTables } from './tenant-tables.js';
import { limitClause, orderClause, whereClause, type Page, type PageRequest } from './paging.js';

export interface MaterialKeyRecord {
  id: string;
  elasticKeyId: string;
  /** 1, 2, … per elastic key, in the order the versions were added. */
  version: number;
  /** The key as a JWE under a content key; null once destroyed. */
  jwe: string | null;
  clearPublic: string | null;
  generateDate: string | null;
  importDate: string | null;
  expirationDate: string | null;
  revocationDate: string | null;
  /** Imported from a public JWK alone: encrypts and verifies, never decrypts or signs. */
  publicOnly: boolean;
  /** When trim destroyed the material (the row stays for audit). */
  destroyDate: string | null;
  /** Encryptions reserved by KMS processes (in blocks): an upper bound of the encryptions made. */
  encryptionCount: number;
}

/** What is stored for a new version; its number is assigned in the transaction that adds it. */
export type NewMaterialKeyRecord = Omit<MaterialKeyRecord, 'version' | 'destroyDate' | 'encryptionCount'> & {
  contentKeyId: string;
};

// A type alias (not an interface) so it satisfies the Row index signature of the database API.
type Row = {
  id: string;
  elastic_key_id: string;
  version: number | string;
  destroy_date: string | null;
  encryption_count: number | string;
  jwe: string | null;
  clear_public: string | null;
  generate_date: string | null;
  import_date: string | null;
  expiration_date: string | null;
  revocation_date: string | null;
  public_only: number | string;
};

function toRecord(row: Row): MaterialKeyRecord {
  return {
    id: row.id,
    elasticKeyId: row.elastic_key_id,
    version: Number(row.version),
    jwe: row.jwe,
    clearPublic: row.clear_public,
    generateDate: row.generate_date,
    importDate: row.import_date,
    expirationDate: row.expiration_date,
    revocationDate: row.revocation_date,
    publicOnly: Number(row.public_only) === 1,
    destroyDate: row.destroy_date,
    encryptionCount: Number(row.encryption_count),
  };
}

const COLUMNS = sql.raw(
  'id, elastic_key_id, version, jwe, clear_public, generate_date, import_date, expiration_date, revocation_date, destroy_date, encryption_count, public_only',
);
const INSERT_COLUMNS = sql.raw(
  'id, elastic_key_id, version, jwe, clear_public, generate_date, import_date, expiration_date, revocation_date, public_only, content_key_id',
);

export async function insertMaterialKey(
  db: Queryable,
  t: TenantTables,
  key: NewMaterialKeyRecord,
  version: number,
): Promise<void> {
  await db.run(sql`INSERT INTO ${t.materialKeys} (${INSERT_COLUMNS})
    VALUES (${key.id}, ${key.elasticKeyId}, ${version}, ${key.jwe}, ${key.clearPublic}, ${key.generateDate}, ${key.importDate},
      ${key.expirationDate}, ${key.revocationDate}, ${key.publicOnly ? 1 : 0}, ${key.contentKeyId})`);
}

export async function findMaterialKey(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
  id: string,
): Promise<MaterialKeyRecord | undefined> {
  const [row] = await db.all<Row>(
    sql`SELECT ${COLUMNS} FROM ${t.materialKeys} WHERE elastic_key_id = ${elasticKeyId} AND id = ${id}`,
  );
  return row ? toRecord(row) : undefined;
}

export async function findMaterialKeyByVersion(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
  version: number,
): Promise<MaterialKeyRecord | undefined> {
  const [row] = await db.all<Row>(
    sql`SELECT ${COLUMNS} FROM ${t.materialKeys} WHERE elastic_key_id = ${elasticKeyId} AND version = ${version}`,
  );
  return row ? toRecord(row) : undefined;
}

/** The newest material key that is not revoked: new ciphertext and signatures use it. */
export async function latestUsableMaterialKey(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
): Promise<MaterialKeyRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.materialKeys}
    WHERE elastic_key_id = ${elasticKeyId} AND revocation_date IS NULL AND jwe IS NOT NULL ORDER BY version DESC LIMIT 1`);
  return row ? toRecord(row) : undefined;
}

/** The highest version number of an elastic key (0 when it has none). */
export async function latestVersion(db: Queryable, t: TenantTables, elasticKeyId: string): Promise<number> {
  const [row] = await db.all<{ latest: number | string | null }>(
    sql`SELECT MAX(version) AS latest FROM ${t.materialKeys} WHERE elastic_key_id = ${elasticKeyId}`,
  );
  return Number(row?.latest ?? 0);
}

/** The versions that are not revoked, not destroyed and not below `minVersion`, oldest first. */
export async function usableMaterialKeys(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
  minVersion = 0,
): Promise<MaterialKeyRecord[]> {
  const rows = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.materialKeys}
    WHERE elastic_key_id = ${elasticKeyId} AND revocation_date IS NULL AND jwe IS NOT NULL AND version >= ${minVersion}
    ORDER BY version ASC`);
  return rows.map(toRecord);
}

/**
 * Reserves `count` more encryptions with a version if that keeps its total within `max`: one atomic
 * conditional UPDATE, so the reservations of every process together never exceed the bound.
 */
export async function reserveEncryptions(
  db: Queryable,
  t: TenantTables,
  id: string,
  count: number,
  max: number,
): Promise<boolean> {
  const changed = await db.run(sql`UPDATE ${t.materialKeys} SET encryption_count = encryption_count + ${count}
    WHERE id = ${id} AND encryption_count + ${count} <= ${max}`);
  return changed === 1;
}

/** Encryptions reserved so far with a version (undefined if the version does not exist). */
export async function encryptionCount(db: Queryable, t: TenantTables, id: string): Promise<number | undefined> {
  const [row] = await db.all<{ n: number | string }>(
    sql`SELECT encryption_count AS n FROM ${t.materialKeys} WHERE id = ${id}`,
  );
  return row ? Number(row.n) : undefined;
}

/** Destroys the material of the versions below `minVersion` (trim); returns the versions destroyed. */
export async function destroyVersionsBelow(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
  minVersion: number,
  date: string,
): Promise<number[]> {
  const due = await db.all<{ version: number | string }>(sql`SELECT version FROM ${t.materialKeys}
    WHERE elastic_key_id = ${elasticKeyId} AND version < ${minVersion} AND jwe IS NOT NULL ORDER BY version`);
  await db.run(sql`UPDATE ${t.materialKeys} SET jwe = NULL, destroy_date = ${date}
    WHERE elastic_key_id = ${elasticKeyId} AND version < ${minVersion} AND jwe IS NOT NULL`);
  return due.map((row) => Number(row.version));
}

export async function revokeMaterialKey(db: Queryable, t: TenantTables, id: string, date: string): Promise<void> {
  await db.run(
    sql`UPDATE ${t.materialKeys} SET revocation_date = ${date} WHERE id = ${id} AND revocation_date IS NULL`,
  );
}

/** Destroys the (wrapped) material of every version of an elastic key; metadata stays for audit. */
export async function destroyMaterial(db: Queryable, t: TenantTables, elasticKeyId: string): Promise<void> {
  await db.run(sql`UPDATE ${t.materialKeys} SET jwe = NULL WHERE elastic_key_id = ${elasticKeyId}`);
}

export interface MaterialKeyFilter {
  elasticKeyId?: string;
  materialKeyIds?: readonly string[];
  minGenerateDate?: string;
  maxGenerateDate?: string;
  minImportDate?: string;
  maxImportDate?: string;
}

const SORT_COLUMNS: Record<string, string> = {
  material_key_id: 'id',
  elastic_key_id: 'elastic_key_id',
  version: 'version',
  generate_date: 'generate_date',
  import_date: 'import_date',
  expiration_date: 'expiration_date',
  revocation_date: 'revocation_date',
};
export const MATERIAL_KEY_SORT_FIELDS = Object.keys(SORT_COLUMNS);

export async function listMaterialKeys(
  db: Queryable,
  t: TenantTables,
  filter: MaterialKeyFilter,
  page: PageRequest,
): Promise<Page<MaterialKeyRecord>> {
  const conditions: SQL[] = [];
  if (filter.elasticKeyId !== undefined) conditions.push(sql`elastic_key_id = ${filter.elasticKeyId}`);
  if (filter.materialKeyIds && filter.materialKeyIds.length > 0) {
    conditions.push(
      sql`id IN (${sql.join(
        filter.materialKeyIds.map((id) => sql`${id}`),
        sql`, `,
      )})`,
    );
  }
  if (filter.minGenerateDate !== undefined) conditions.push(sql`generate_date >= ${filter.minGenerateDate}`);
  if (filter.maxGenerateDate !== undefined) conditions.push(sql`generate_date <= ${filter.maxGenerateDate}`);
  if (filter.minImportDate !== undefined) conditions.push(sql`import_date >= ${filter.minImportDate}`);
  if (filter.maxImportDate !== undefined) conditions.push(sql`import_date <= ${filter.maxImportDate}`);
  const where = whereClause(conditions);
  const [count] = await db.all<{ n: number | string }>(sql`SELECT COUNT(*) AS n FROM ${t.materialKeys}${where}`);
  const rows = await db.all<Row>(
    sql`SELECT ${COLUMNS} FROM ${t.materialKeys}${where}${orderClause(page.sort, SORT_COLUMNS, 'id')}${limitClause(page)}`,
  );
  return { items: rows.map(toRecord), page: page.page, size: page.size, total: Number(count?.n ?? 0) };
}
