/**
 * oidc-provider's storage adapter on our database (identity.md "Persistence"): every model in one
 * table keyed by (model, id), with the grant id, user code and uid as indexed columns for the lookups
 * oidc-provider makes. Expired rows read as missing and are swept by `deleteExpiredOidcModels`.
 * Payloads hold tokens, so they are never logged.
 */
import { sql } from 'drizzle-orm';
import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';
import type { Database } from '@cryptoutil/infra';

type Row = { payload: string; consumed_at: number | string | null };

function toPayload(row: Row | undefined): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
  return payload;
}

export function oidcAdapterFactory(db: Database, options: { now?: () => number } = {}): AdapterFactory {
  const now = options.now ?? Date.now;
  return (model: string): Adapter => {
    const findBy = async (column: 'id' | 'uid' | 'user_code', value: string) => {
      const [row] = await db.all<Row>(sql`SELECT payload, consumed_at FROM identity_oidc_models
        WHERE model = ${model} AND ${sql.raw(column)} = ${value} AND (expires_at IS NULL OR expires_at > ${now()})`);
      return toPayload(row);
    };
    return {
      async upsert(id, payload, expiresIn) {
        const expiresAt = expiresIn ? now() + expiresIn * 1000 : null;
        const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
        const userCode = typeof payload.userCode === 'string' ? payload.userCode : null;
        const uid = typeof payload.uid === 'string' ? payload.uid : null;
        await db.run(sql`INSERT INTO identity_oidc_models (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
          VALUES (${model}, ${id}, ${JSON.stringify(payload)}, ${grantId}, ${userCode}, ${uid}, ${expiresAt}, ${null})
          ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
            user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`);
      },
      find: (id) => findBy('id', id),
      findByUid: (uid) => findBy('uid', uid),
      findByUserCode: (userCode) => findBy('user_code', userCode),
      async consume(id) {
        await db.run(sql`UPDATE identity_oidc_models SET consumed_at = ${now()} WHERE model = ${model} AND id = ${id}`);
      },
      async destroy(id) {
        await db.run(sql`DELETE FROM identity_oidc_models WHERE model = ${model} AND id = ${id}`);
      },
      async revokeByGrantId(grantId) {
        await db.run(sql`DELETE FROM identity_oidc_models WHERE grant_id = ${grantId}`);
      },
    };
  };
}

/** Removes expired rows of every model; returns how many. */
export async function deleteExpiredOidcModels(db: Database, now = Date.now()): Promise<number> {
  return db.run(sql`DELETE FROM identity_oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ${now}`);
}
