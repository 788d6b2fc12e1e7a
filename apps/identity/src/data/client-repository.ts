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
}

type Row = {
  client_id: string;
  metadata: string;
  secret_hash: string | null;
  trusted: number;
  tenant_id: string | null;
  demo: number;
};

function toRecord(row: Row): ClientRecord {
  return {
    clientId: row.client_id,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    secretHash: row.secret_hash,
    trusted: Number(row.trusted) === 1,
    tenantId: row.tenant_id,
    demo: Number(row.demo) === 1,
  };
}

export async function insertClient(db: Queryable, client: ClientRecord, now: string): Promise<void> {
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
