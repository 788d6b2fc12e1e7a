/**
 * Passkeys (WebAuthn credentials) and the one-time challenges of the ceremonies in progress. Credential ids
 * and public keys are base64url text; transports a JSON array. A challenge is bound to one interaction and
 * one purpose, and taken (deleted) when used, so it answers once, on whichever instance.
 */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface WebAuthnCredentialRecord {
  /** The credential id (base64url), as the authenticator reports it. */
  id: string;
  userId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  signCount: number;
  transports: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

type Row = {
  id: string;
  user_id: string;
  public_key: string;
  sign_count: number | string;
  transports: string;
  created_at: string;
  last_used_at: string | null;
};

function toRecord(row: Row): WebAuthnCredentialRecord {
  return {
    id: row.id,
    userId: row.user_id,
    publicKey: row.public_key,
    signCount: Number(row.sign_count),
    transports: JSON.parse(row.transports) as string[],
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

export async function insertWebAuthnCredential(
  db: Queryable,
  credential: Omit<WebAuthnCredentialRecord, 'lastUsedAt'>,
): Promise<void> {
  await db.run(sql`INSERT INTO identity_webauthn_credentials
    (id, user_id, public_key, sign_count, transports, created_at, last_used_at)
    VALUES (${credential.id}, ${credential.userId}, ${credential.publicKey}, ${credential.signCount},
      ${JSON.stringify(credential.transports)}, ${credential.createdAt}, ${null})`);
}

export async function findWebAuthnCredential(db: Queryable, id: string): Promise<WebAuthnCredentialRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT * FROM identity_webauthn_credentials WHERE id = ${id}`);
  return row ? toRecord(row) : undefined;
}

/** A user's passkeys, oldest first. */
export async function listWebAuthnCredentials(db: Queryable, userId: string): Promise<WebAuthnCredentialRecord[]> {
  const rows = await db.all<Row>(
    sql`SELECT * FROM identity_webauthn_credentials WHERE user_id = ${userId} ORDER BY created_at ASC, id ASC`,
  );
  return rows.map(toRecord);
}

export async function deleteWebAuthnCredential(db: Queryable, userId: string, id: string): Promise<boolean> {
  return (await db.run(sql`DELETE FROM identity_webauthn_credentials WHERE id = ${id} AND user_id = ${userId}`)) === 1;
}

/**
 * Records a use: the new signature counter, only if the stored one is still `previous` (a compare-and-set,
 * so two instances cannot both accept assertions with one counter value). False: someone else moved it.
 */
export async function recordWebAuthnUse(
  db: Queryable,
  id: string,
  previous: number,
  next: number,
  now: string,
): Promise<boolean> {
  const changed = await db.run(sql`UPDATE identity_webauthn_credentials SET sign_count = ${next}, last_used_at = ${now}
    WHERE id = ${id} AND sign_count = ${previous}`);
  return changed === 1;
}

/** What a ceremony is for; each interaction holds at most one challenge per purpose. */
export type ChallengePurpose = 'register' | 'second_factor' | 'passwordless';

/** Stores a new challenge (replacing an earlier one of the same interaction and purpose); drops expired ones. */
export async function putWebAuthnChallenge(
  db: Queryable,
  challenge: {
    binding: string;
    purpose: ChallengePurpose;
    challenge: string;
    userId: string | null;
    expiresAt: number;
  },
  now: number,
): Promise<void> {
  await db.run(sql`DELETE FROM identity_webauthn_challenges WHERE expires_at < ${now}`);
  await db.run(sql`INSERT INTO identity_webauthn_challenges (binding, purpose, challenge, user_id, expires_at)
    VALUES (${challenge.binding}, ${challenge.purpose}, ${challenge.challenge}, ${challenge.userId}, ${challenge.expiresAt})
    ON CONFLICT (binding, purpose) DO UPDATE SET challenge = excluded.challenge, user_id = excluded.user_id,
      expires_at = excluded.expires_at`);
}

/**
 * Takes the challenge of an interaction and purpose: deletes it and returns it if it had not expired. One
 * statement, so of two concurrent takers only one gets it.
 */
export async function takeWebAuthnChallenge(
  db: Queryable,
  binding: string,
  purpose: ChallengePurpose,
  now: number,
): Promise<{ challenge: string; userId: string | null } | undefined> {
  const [row] = await db.all<{ challenge: string; user_id: string | null; expires_at: number | string }>(
    sql`DELETE FROM identity_webauthn_challenges WHERE binding = ${binding} AND purpose = ${purpose}
      RETURNING challenge, user_id, expires_at`,
  );
  if (!row || Number(row.expires_at) < now) return undefined;
  return { challenge: row.challenge, userId: row.user_id };
}

export async function hasWebAuthnCredential(db: Queryable, userId: string): Promise<boolean> {
  const rows = await db.all(sql`SELECT 1 AS one FROM identity_webauthn_credentials WHERE user_id = ${userId} LIMIT 1`);
  return rows.length > 0;
}
