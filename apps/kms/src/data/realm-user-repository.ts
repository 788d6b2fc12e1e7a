/** Users of database realms (`kms_realm_users`): one row per user, unique by (realm, username). */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface RealmUserRecord {
  id: string;
  realmId: string;
  username: string;
  passwordHash: string;
  email: string | null;
  roles: string[];
  tenants: string[];
  enabled: boolean;
  metadata: Record<string, unknown>;
  metadataSchema: string | null;
  createdAt: string;
  updatedAt: string;
  lastLoginAt: string | null;
}

type Row = {
  id: string;
  realm_id: string;
  username: string;
  password_hash: string;
  email: string | null;
  roles: string;
  tenants: string;
  enabled: number | boolean;
  metadata: string;
  metadata_schema: string | null;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
};

const COLUMNS = sql.raw(
  'id, realm_id, username, password_hash, email, roles, tenants, enabled, metadata, metadata_schema, created_at, updated_at, last_login_at',
);

const toRecord = (row: Row): RealmUserRecord => ({
  id: row.id,
  realmId: row.realm_id,
  username: row.username,
  passwordHash: row.password_hash,
  email: row.email,
  roles: JSON.parse(row.roles) as string[],
  tenants: JSON.parse(row.tenants) as string[],
  enabled: Number(row.enabled) === 1,
  metadata: JSON.parse(row.metadata) as Record<string, unknown>,
  metadataSchema: row.metadata_schema,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  lastLoginAt: row.last_login_at,
});

export async function insertRealmUser(db: Queryable, user: RealmUserRecord): Promise<void> {
  await db.run(sql`INSERT INTO kms_realm_users (${COLUMNS}) VALUES (${user.id}, ${user.realmId}, ${user.username},
    ${user.passwordHash}, ${user.email}, ${JSON.stringify(user.roles)}, ${JSON.stringify(user.tenants)},
    ${user.enabled ? 1 : 0}, ${JSON.stringify(user.metadata)}, ${user.metadataSchema}, ${user.createdAt},
    ${user.updatedAt}, ${user.lastLoginAt})`);
}

/** Replaces every mutable column of an existing user; the number of rows changed (0 or 1). */
export async function updateRealmUser(db: Queryable, user: RealmUserRecord): Promise<number> {
  return db.run(sql`UPDATE kms_realm_users SET password_hash = ${user.passwordHash}, email = ${user.email},
    roles = ${JSON.stringify(user.roles)}, tenants = ${JSON.stringify(user.tenants)}, enabled = ${user.enabled ? 1 : 0},
    metadata = ${JSON.stringify(user.metadata)}, metadata_schema = ${user.metadataSchema}, updated_at = ${user.updatedAt}
    WHERE realm_id = ${user.realmId} AND id = ${user.id}`);
}

export async function findRealmUser(db: Queryable, realmId: string, id: string): Promise<RealmUserRecord | undefined> {
  const [row] = await db.all<Row>(
    sql`SELECT ${COLUMNS} FROM kms_realm_users WHERE realm_id = ${realmId} AND id = ${id}`,
  );
  return row ? toRecord(row) : undefined;
}

export async function findRealmUserByName(
  db: Queryable,
  realmId: string,
  username: string,
): Promise<RealmUserRecord | undefined> {
  const [row] = await db.all<Row>(
    sql`SELECT ${COLUMNS} FROM kms_realm_users WHERE realm_id = ${realmId} AND username = ${username}`,
  );
  return row ? toRecord(row) : undefined;
}

/** Users of a realm in creation order (UUIDv7 ids), a page at a time. */
export async function listRealmUsers(
  db: Queryable,
  realmId: string,
  page: { offset: number; limit: number },
): Promise<{ items: RealmUserRecord[]; total: number }> {
  const rows = await db.all<Row>(sql`SELECT ${COLUMNS} FROM kms_realm_users WHERE realm_id = ${realmId}
    ORDER BY id LIMIT ${page.limit} OFFSET ${page.offset}`);
  const [count] = await db.all<{ total: number | string }>(
    sql`SELECT COUNT(*) AS total FROM kms_realm_users WHERE realm_id = ${realmId}`,
  );
  return { items: rows.map(toRecord), total: Number(count?.total ?? 0) };
}

export async function recordRealmUserLogin(db: Queryable, id: string, at: string): Promise<void> {
  await db.run(sql`UPDATE kms_realm_users SET last_login_at = ${at} WHERE id = ${id}`);
}

export async function deleteRealmUser(db: Queryable, realmId: string, id: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_realm_users WHERE realm_id = ${realmId} AND id = ${id}`);
}

export async function deleteRealmUsers(db: Queryable, realmId: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_realm_users WHERE realm_id = ${realmId}`);
}
