/**
 * DPoP proofs already used, in the database so every KMS instance refuses a proof replayed to another
 * (RFC 9449 §11.1). A proof is recorded by inserting its id: a primary-key conflict is a replay, decided
 * by the database in one statement, so two instances racing with one proof cannot both win.
 */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';
import type { DpopReplayStore } from '@cryptoutil/jose-authority';

/** True when `id` was new and is now recorded until `expiresMs`; false when it was already used. */
export async function recordDpopProof(db: Queryable, id: string, expiresMs: number): Promise<boolean> {
  const inserted = await db.run(
    sql`INSERT INTO kms_dpop_proofs (id, expires_ms) VALUES (${id}, ${expiresMs}) ON CONFLICT (id) DO NOTHING`,
  );
  return inserted === 1;
}

/** Forgets proofs that can no longer be accepted anyway (their `iat` is out of the window); run by the sweep. */
export async function deleteExpiredDpopProofs(db: Queryable, nowMs: number): Promise<number> {
  return db.run(sql`DELETE FROM kms_dpop_proofs WHERE expires_ms < ${nowMs}`);
}

/** The replay store of the token validator, on this database. */
export function databaseDpopReplayStore(db: Queryable): DpopReplayStore {
  return { remember: (id, expiresAtMs) => recordDpopProof(db, id, expiresAtMs) };
}
