/**
 * oidc-provider's storage adapter on our database (identity.md "Persistence"): every model in one
 * table keyed by (model, id), with the grant id, user code and uid as indexed columns for the lookups
 * oidc-provider makes. Expired rows read as missing and are swept by `deleteExpiredOidcModels`.
 * Payloads hold tokens, so they are never logged.
 *
 * Bearer credentials are not stored (secret hygiene, issue #10): for the models whose id is itself a
 * credential a client presents (refresh tokens, authorization codes, opaque access tokens), the row is
 * keyed by a SHA-256 of the id and the payload's `jti` (the same value) is left out and put back on read;
 * a copy of the database yields no usable token, as with Hydra's token signatures. Session and
 * interaction ids stay as they are: their cookies are signed with the cookie keys, which are not in the
 * database. Device codes (RFC 8628) are hashed too, but oidc-provider also finds them by user code and
 * then needs the device code back (to save the approval under it, and an interaction names its device
 * code): so their payload keeps the device code sealed under an at-rest key that is not in the database
 * (`CredentialSealer`), as is an interaction's `deviceCode`. Expired device codes are kept an hour longer
 * so that a late poll is told `expired_token` (RFC 8628 §3.5), not that the code does not exist.
 *
 * Consuming (an authorization code, a rotated refresh token) is a compare-and-set: of concurrent requests
 * presenting the same code or refresh token, on any number of instances, exactly one wins; every other
 * one is treated as reuse: the whole grant is revoked and the request refused with `invalid_grant`.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';
import type { Database } from '@cryptoutil/infra';

type Row = { payload: string; consumed_at: number | string | null };

/** Models whose id a client presents as a credential: stored only as a hash. */
export const HASHED_ID_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'ClientCredentials',
  'RefreshToken',
  'BackchannelAuthenticationRequest',
  'DeviceCode',
]);
/** Models found by something other than their id that still need it back: the id is kept sealed. */
const SEALED_ID_MODELS: ReadonlySet<string> = new Set(['DeviceCode']);
/** How long a row outlives its expiry, per model (seconds). */
const RETAINED_AFTER_EXPIRY: Readonly<Record<string, number>> = { DeviceCode: 3600 };

/** Encrypts a credential kept in a payload under a key the database does not hold. */
export interface CredentialSealer {
  seal(value: string): Promise<string>;
  open(sealed: string): Promise<string>;
}
/** Marks a stored id that is a hash (rows written before hashing are found and converted at start). */
const HASHED = 's256.';

/** The id as stored for `model`. */
export function storedOidcId(model: string, id: string): string {
  return HASHED_ID_MODELS.has(model) ? HASHED + createHash('sha256').update(id).digest('base64url') : id;
}

/**
 * The payload as stored: without the `jti` of a hashed-id model (it is the credential), a device code
 * sealed where the provider needs it back.
 */
async function storable(model: string, id: string, payload: AdapterPayload, sealer: CredentialSealer) {
  const stored: Record<string, unknown> = { ...payload };
  if (HASHED_ID_MODELS.has(model) && payload.jti === id) {
    delete stored.jti;
    if (SEALED_ID_MODELS.has(model)) stored.sealedJti = await sealer.seal(id);
  }
  if (model === 'Interaction' && typeof payload.deviceCode === 'string') {
    delete stored.deviceCode;
    stored.sealedDeviceCode = await sealer.seal(payload.deviceCode);
  }
  return JSON.stringify(stored);
}

async function toPayload(
  model: string,
  id: string | undefined,
  row: Row | undefined,
  sealer: CredentialSealer,
): Promise<AdapterPayload | undefined> {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload & { sealedJti?: string; sealedDeviceCode?: string };
  const { sealedJti, sealedDeviceCode } = payload;
  delete payload.sealedJti;
  delete payload.sealedDeviceCode;
  if (HASHED_ID_MODELS.has(model) && payload.jti === undefined) {
    if (id !== undefined) payload.jti = id;
    else if (sealedJti !== undefined) payload.jti = await sealer.open(sealedJti);
  }
  if (sealedDeviceCode !== undefined) payload.deviceCode = await sealer.open(sealedDeviceCode);
  if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
  return payload;
}

/** oidc-provider's own words for a reused code or token (the audit log tells reuse by them). */
const REUSED: Record<string, string> = {
  RefreshToken: 'refresh token already used',
  AuthorizationCode: 'authorization code already consumed',
};

export interface OidcAdapterOptions {
  /** Seals the device codes the provider needs back (see above). */
  sealer: CredentialSealer;
  now?: () => number;
}

export function oidcAdapterFactory(db: Database, options: OidcAdapterOptions): AdapterFactory {
  const { sealer } = options;
  const now = options.now ?? Date.now;
  return (model: string): Adapter => {
    const key = (id: string) => storedOidcId(model, id);
    const findBy = async (column: 'id' | 'uid' | 'user_code', value: string) => {
      const [row] = await db.all<Row>(sql`SELECT payload, consumed_at FROM identity_oidc_models
        WHERE model = ${model} AND ${sql.raw(column)} = ${column === 'id' ? key(value) : value}
          AND (expires_at IS NULL OR expires_at > ${now()})`);
      return toPayload(model, column === 'id' ? value : undefined, row, sealer);
    };
    return {
      async upsert(id, payload, expiresIn) {
        const expiresAt = expiresIn ? now() + (expiresIn + (RETAINED_AFTER_EXPIRY[model] ?? 0)) * 1000 : null;
        const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
        const userCode = typeof payload.userCode === 'string' ? payload.userCode : null;
        const uid = typeof payload.uid === 'string' ? payload.uid : null;
        await db.run(sql`INSERT INTO identity_oidc_models (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
          VALUES (${model}, ${key(id)}, ${await storable(model, id, payload, sealer)}, ${grantId}, ${userCode}, ${uid}, ${expiresAt}, ${null})
          ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
            user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`);
      },
      find: (id) => findBy('id', id),
      findByUid: (uid) => findBy('uid', uid),
      findByUserCode: (userCode) => findBy('user_code', userCode),
      async consume(id) {
        const won = await db.run(sql`UPDATE identity_oidc_models SET consumed_at = ${now()}
          WHERE model = ${model} AND id = ${key(id)} AND consumed_at IS NULL`);
        if (won > 0) return;
        // Someone consumed it first (a concurrent request, maybe on another instance): reuse.
        const [row] = await db.all<{ grant_id: string | null }>(
          sql`SELECT grant_id FROM identity_oidc_models WHERE model = ${model} AND id = ${key(id)}`,
        );
        if (row?.grant_id) {
          await db.run(sql`DELETE FROM identity_oidc_models
            WHERE grant_id = ${row.grant_id} OR (model = 'Grant' AND id = ${row.grant_id})`);
        }
        throw new errors.InvalidGrant(REUSED[model] ?? 'grant already used');
      },
      async destroy(id) {
        await db.run(sql`DELETE FROM identity_oidc_models WHERE model = ${model} AND id = ${key(id)}`);
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

/**
 * Converts rows written before ids were hashed (older versions kept credentials as ids): each gets its
 * hashed id and loses its `jti`, in one transaction, so no session or refresh token is lost by upgrading.
 * Returns how many rows it converted; run at start, after the migrations.
 */
export async function hashStoredCredentials(db: Database, sealer: CredentialSealer): Promise<number> {
  const models = [...HASHED_ID_MODELS];
  return db.transaction(async (tx) => {
    const rows = await tx.all<{ model: string; id: string; payload: string }>(
      sql`SELECT model, id, payload FROM identity_oidc_models
        WHERE model IN (${sql.join(
          models.map((model) => sql`${model}`),
          sql`, `,
        )}) AND id NOT LIKE ${`${HASHED}%`}`,
    );
    for (const row of rows) {
      const payload = await storable(row.model, row.id, JSON.parse(row.payload) as AdapterPayload, sealer);
      await tx.run(sql`UPDATE identity_oidc_models SET id = ${storedOidcId(row.model, row.id)}, payload = ${payload}
        WHERE model = ${row.model} AND id = ${row.id}`);
    }
    return rows.length;
  });
}
