/** Pending console sign-ins through Identity (`kms_identity_logins`): written at the start, taken once at the callback. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Where the browser goes once signed in (a path of this KMS). */
  returnTo: string;
  expiresAt: string;
}

type Row = { state: string; nonce: string; code_verifier: string; return_to: string; expires_at: string };

export async function insertPendingLogin(db: Queryable, login: PendingLogin): Promise<void> {
  await db.run(sql`INSERT INTO kms_identity_logins (state, nonce, code_verifier, return_to, expires_at)
    VALUES (${login.state}, ${login.nonce}, ${login.codeVerifier}, ${login.returnTo}, ${login.expiresAt})`);
}

/** The pending login of `state`, deleted in the same statement so a callback can be used once only. */
export async function takePendingLogin(db: Queryable, state: string): Promise<PendingLogin | undefined> {
  const [row] = await db.all<Row>(sql`DELETE FROM kms_identity_logins WHERE state = ${state}
    RETURNING state, nonce, code_verifier, return_to, expires_at`);
  return row
    ? {
        state: row.state,
        nonce: row.nonce,
        codeVerifier: row.code_verifier,
        returnTo: row.return_to,
        expiresAt: row.expires_at,
      }
    : undefined;
}

export async function deleteExpiredPendingLogins(db: Queryable, now: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_identity_logins WHERE expires_at <= ${now}`);
}
