/** Token signing keys, each a JWE under the at-rest key from a secret file. Newest first. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  jwe: string;
  createdAt: string;
  retireAfter: string | null;
}

type Row = { kid: string; alg: string; jwe: string; created_at: string; retire_after: string | null };

export async function insertSigningKey(db: Queryable, key: SigningKeyRecord): Promise<void> {
  await db.run(sql`INSERT INTO identity_signing_keys (kid, alg, jwe, created_at, retire_after)
    VALUES (${key.kid}, ${key.alg}, ${key.jwe}, ${key.createdAt}, ${key.retireAfter})`);
}

/** Keys still published: not retired, or retired but possibly still verifying tokens. */
const live = (now: string) => sql`retire_after IS NULL OR retire_after > ${now}`;

/** The published keys, newest first. */
export async function liveSigningKeys(db: Queryable, now: string): Promise<SigningKeyRecord[]> {
  const rows = await db.all<Row>(sql`SELECT * FROM identity_signing_keys WHERE ${live(now)} ORDER BY kid DESC`);
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    jwe: row.jwe,
    createdAt: row.created_at,
    retireAfter: row.retire_after,
  }));
}

/** Only the ids and retirements of the live keys (no key material): what the JWKS endpoint checks per request. */
export async function liveSigningKeyIds(
  db: Queryable,
  now: string,
): Promise<{ kid: string; retireAfter: string | null }[]> {
  const rows = await db.all<{ kid: string; retire_after: string | null }>(
    sql`SELECT kid, retire_after FROM identity_signing_keys WHERE ${live(now)} ORDER BY kid DESC`,
  );
  return rows.map((row) => ({ kid: row.kid, retireAfter: row.retire_after }));
}

/** Marks the current keys of `alg` to leave the JWKS at `retireAfter` (after their last token expires). */
export async function retireSigningKeys(db: Queryable, alg: string, retireAfter: string): Promise<void> {
  await db.run(
    sql`UPDATE identity_signing_keys SET retire_after = ${retireAfter} WHERE alg = ${alg} AND retire_after IS NULL`,
  );
}
