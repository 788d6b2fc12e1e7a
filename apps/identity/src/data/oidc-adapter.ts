/**
 * oidc-provider's storage adapter on our database (identity.md "Persistence"): every model in one
 * table keyed by (model, id), with the grant id, user code and uid as indexed columns for the lookups
 * oidc-provider makes. Expired rows read as missing and are swept by `deleteExpiredOidcModels`.
 * Payloads hold tokens, so they are never logged.
 *
 * Consuming (an authorization code, a rotated refresh token) is a compare-and-set: of concurrent requests
 * presenting the same code or refresh token, on any number of instances, exactly one wins; every other
 * one is treated as reuse: the whole grant is revoked and the request refused with `invalid_grant`.
 */
import { sql } from 'drizzle-orm';
import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';
import type { Database } from '@cryptoutil/infra';

type Row = { payload: string; consumed_at: number | string | null };

function toPayload(row: Row | undefined): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
  return payload;
}

/** oidc-provider's own words for a reused code or token (the audit log tells reuse by them). */
const REUSED: Record<string, string> = {
  RefreshToken: 'refresh token already used',
  AuthorizationCode: 'authorization code already consumed',
};

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
        const won = await db.run(sql`UPDATE identity_oidc_models SET consumed_at = ${now()}
          WHERE model = ${model} AND id = ${id} AND consumed_at IS NULL`);
        if (won > 0) return;
        // Someone consumed it first (a concurrent request, maybe on another instance): reuse.
        const [row] = await db.all<{ grant_id: string | null }>(
          sql`SELECT grant_id FROM identity_oidc_models WHERE model = ${model} AND id = ${id}`,
        );
        if (row?.grant_id) {
          await db.run(sql`DELETE FROM identity_oidc_models
            WHERE grant_id = ${row.grant_id} OR (model = 'Grant' AND id = ${row.grant_id})`);
        }
        throw new errors.InvalidGrant(REUSED[model] ?? 'grant already used');
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
