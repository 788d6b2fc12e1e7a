/**
 * Refresh-token rotations inside the reuse grace window (identity.md "Refresh rotation without races").
 * One row per rotated token, keyed like the token's own row (`s256.` + SHA-256 of its value): inserting it
 * is the compare-and-set that picks the one request allowed to rotate, on any number of instances; the
 * successor is kept only sealed (a JWE under the at-rest key) and only until the window ends.
 */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface RefreshRotation {
  /** The sealed successor, or null while the rotation is under way. */
  successor: string | null;
  expiresAt: number;
}

/**
 * Claims the rotation of an unconsumed, unexpired refresh token for a window ending at `windowEndsAt`.
 * True for exactly one of any number of concurrent callers; a claim whose window has ended is taken over.
 */
export async function claimRefreshRotation(
  db: Queryable,
  tokenId: string,
  nowMs: number,
  windowEndsAt: number,
): Promise<boolean> {
  const claimed = await db.run(sql`INSERT INTO identity_refresh_rotations (token_id, successor, expires_at)
    SELECT id, NULL, CAST(${windowEndsAt} AS BIGINT) FROM identity_oidc_models
      WHERE model = 'RefreshToken' AND id = ${tokenId} AND consumed_at IS NULL
        AND (expires_at IS NULL OR expires_at > ${nowMs})
    ON CONFLICT (token_id) DO UPDATE SET successor = NULL, expires_at = excluded.expires_at
      WHERE identity_refresh_rotations.expires_at <= ${nowMs}`);
  return claimed > 0;
}

export async function findRefreshRotation(db: Queryable, tokenId: string): Promise<RefreshRotation | undefined> {
  const [row] = await db.all<{ successor: string | null; expires_at: number | string }>(
    sql`SELECT successor, expires_at FROM identity_refresh_rotations WHERE token_id = ${tokenId}`,
  );
  return row ? { successor: row.successor, expiresAt: Number(row.expires_at) } : undefined;
}

export async function recordRefreshSuccessor(db: Queryable, tokenId: string, sealed: string): Promise<void> {
  await db.run(sql`UPDATE identity_refresh_rotations SET successor = ${sealed} WHERE token_id = ${tokenId}`);
}

/** Gives a claim up when its request failed before the token was consumed, so another request may rotate. */
export async function releaseRefreshRotation(db: Queryable, tokenId: string): Promise<void> {
  await db.run(sql`DELETE FROM identity_refresh_rotations
    WHERE token_id = ${tokenId} AND successor IS NULL AND EXISTS (
      SELECT 1 FROM identity_oidc_models WHERE model = 'RefreshToken' AND id = ${tokenId} AND consumed_at IS NULL)`);
}

/** Erases rotations (and their sealed successors) whose window has ended; returns how many. */
export async function deleteEndedRefreshRotations(db: Queryable, nowMs: number): Promise<number> {
  return db.run(sql`DELETE FROM identity_refresh_rotations WHERE expires_at <= ${nowMs}`);
}
