/** OAuth clients: oidc-provider metadata as JSON, the secret only as a PBKDF2 hash. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface ClientRecord {
  clientId: string;
  metadata: Record<string, unknown>;
  secretHash: string | null;
  trusted: boolean;
  tenantId: string | null;
  demo: boolean;
  createdAt: string;
  updatedAt: string;
}

type Row = {
  client_id: string;
  metadata: string;
  secret_hash: string | null;
  trusted: number;
  tenant_id: string | null;
  demo: number;
  created_at: string;
  updated_at: string;
};

function toRecord(row: Row): ClientRecord {
  return {
    clientId: row.client_id,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    secretHash: row.secret_hash,
    trusted: Number(row.trusted) === 1,
    tenantId: row.tenant_id,
    demo: Number(row.demo) === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertClient(
  db: Queryable,
  client: Omit<ClientRecord, 'createdAt' | 'updatedAt'>,
  now: string,
): Promise<void> {
  await db.run(sql`INSERT INTO identity_clients (client_id, metadata, secret_hash, trusted, tenant_id, demo, created_at, updated_at)
    VALUES (${client.clientId}, ${JSON.stringify(client.metadata)}, ${client.secretHash}, ${client.trusted ? 1 : 0},
      ${client.tenantId}, ${client.demo ? 1 : 0}, ${now}, ${now})`);
}

export async function findClient(db: Queryable, clientId: string): Promise<ClientRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT * FROM identity_clients WHERE client_id = ${clientId}`);
  return row ? toRecord(row) : undefined;
}

export async function deleteDemoClients(db: Queryable): Promise<number> {
  return db.run(sql`DELETE FROM identity_clients WHERE demo = 1`);
}

export interface ClientChanges {
  metadata?: Record<string, unknown>;
  secretHash?: string | null;
  trusted?: boolean;
  tenantId?: string | null;
}

/** Applies the given changes; returns whether the client existed. */
export async function updateClient(
  db: Queryable,
  clientId: string,
  changes: ClientChanges,
  now: string,
): Promise<boolean> {
  const sets = [sql`updated_at = ${now}`];
  if (changes.metadata !== undefined) sets.push(sql`metadata = ${JSON.stringify(changes.metadata)}`);
  if (changes.secretHash !== undefined) sets.push(sql`secret_hash = ${changes.secretHash}`);
  if (changes.trusted !== undefined) sets.push(sql`trusted = ${changes.trusted ? 1 : 0}`);
  if (changes.tenantId !== undefined) sets.push(sql`tenant_id = ${changes.tenantId}`);
  return (
    (await db.run(sql`UPDATE identity_clients SET ${sql.join(sets, sql`, `)} WHERE client_id = ${clientId}`)) === 1
  );
}

export async function deleteClient(db: Queryable, clientId: string): Promise<boolean> {
  return (await db.run(sql`DELETE FROM identity_clients WHERE client_id = ${clientId}`)) === 1;
}

/** One page of clients ordered by id, and how many there are in all. */
export async function listClients(
  db: Queryable,
  page: { offset: number; limit: number },
): Promise<{ clients: ClientRecord[]; total: number }> {
  const rows = await db.all<Row>(
    sql`SELECT * FROM identity_clients ORDER BY client_id ASC LIMIT ${page.limit} OFFSET ${page.offset}`,
  );
  const [count] = await db.all<{ total: number | string }>(sql`SELECT COUNT(*) AS total FROM identity_clients`);
  return { clients: rows.map(toRecord), total: Number(count?.total ?? 0) };
}
