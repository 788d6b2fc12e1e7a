/** The deny-list of revoked JWT access tokens, kept until each token would have expired anyway. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export async function revokeJti(db: Queryable, jti: string, expiresAtMs: number): Promise<void> {
  await db.run(
    sql`INSERT INTO identity_revoked_tokens (jti, expires_at) VALUES (${jti}, ${expiresAtMs}) ON CONFLICT (jti) DO NOTHING`,
  );
}

export async function isJtiRevoked(db: Queryable, jti: string): Promise<boolean> {
  const rows = await db.all(sql`SELECT 1 AS revoked FROM identity_revoked_tokens WHERE jti = ${jti}`);
  return rows.length > 0;
}

export async function deleteExpiredRevocations(db: Queryable, nowMs: number): Promise<number> {
  return db.run(sql`DELETE FROM identity_revoked_tokens WHERE expires_at <= ${nowMs}`);
}
