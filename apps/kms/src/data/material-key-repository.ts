/** Material key rows: the key itself only as a JWE under a content key; the public half in clear. */
import { sql, type SQL } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { TenantTables } from './tenant-tables.js';
import { limitClause, orderClause, whereClause, type Page, type PageRequest } from './paging.js';

export interface MaterialKeyRecord {
  id: string;
  elasticKeyId: string;
  /** The key as a JWE under a content key; null once destroyed. */
  jwe: string | null;
  clearPublic: string | null;
  generateDate: string | null;
  importDate: string | null;
  expirationDate: string | null;
  revocationDate: string | null;
  /** Imported from a public JWK alone: encrypts and verifies, never decrypts or signs. */
  publicOnly: boolean;
}

// A type alias (not an interface) so it satisfies the Row index signature of the database API.
type Row = {
  id: string;
  elastic_key_id: string;
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
    jwe: row.jwe,
    clearPublic: row.clear_public,
    generateDate: row.generate_date,
    importDate: row.import_date,
    expirationDate: row.expiration_date,
    revocationDate: row.revocation_date,
    publicOnly: Number(row.public_only) === 1,
  };
}

const COLUMNS = sql.raw(
  'id, elastic_key_id, jwe, clear_public, generate_date, import_date, expiration_date, revocation_date, public_only',
);

export async function insertMaterialKey(
  db: Queryable,
  t: TenantTables,
  key: MaterialKeyRecord & { contentKeyId: string },
): Promise<void> {
  await db.run(sql`INSERT INTO ${t.materialKeys} (${COLUMNS}, content_key_id)
    VALUES (${key.id}, ${key.elasticKeyId}, ${key.jwe}, ${key.clearPublic}, ${key.generateDate}, ${key.importDate},
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

/** The newest material key that is not revoked: new ciphertext and signatures use it. */
export async function latestUsableMaterialKey(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
): Promise<MaterialKeyRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.materialKeys}
    WHERE elastic_key_id = ${elasticKeyId} AND revocation_date IS NULL AND jwe IS NOT NULL ORDER BY id DESC LIMIT 1`);
  return row ? toRecord(row) : undefined;
}

export async function usableMaterialKeys(
  db: Queryable,
  t: TenantTables,
  elasticKeyId: string,
): Promise<MaterialKeyRecord[]> {
  const rows = await db.all<Row>(sql`SELECT ${COLUMNS} FROM ${t.materialKeys}
    WHERE elastic_key_id = ${elasticKeyId} AND revocation_date IS NULL AND jwe IS NOT NULL ORDER BY id ASC`);
  return rows.map(toRecord);
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
