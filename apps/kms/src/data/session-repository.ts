/** Browser sessions (`kms_sessions`): shared by every instance on the same database. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface SessionRecord {
  id: string;
  /** SHA-256 (hex) of the secret half of the cookie; the secret itself is never stored. */
  secretHash: string;
  subject: string;
  username: string;
  scopes: string[];
  tenants: string[];
  createdAt: string;
  lastSeenAt: string;
  /** The absolute end of the session, whatever its activity. */
  expiresAt: string;
  /** Identity's session id when the user signed in through Identity (its back-channel logout names it). */
  identitySid?: string | null;
}

type Row = {
  id: string;
  secret_hash: string;
  subject: string;
  username: string;
  scopes: string;
  tenants: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  identity_sid: string | null;
};

const COLUMNS = sql.raw(
  'id, secret_hash, subject, username, scopes, tenants, created_at, last_seen_at, expires_at, identity_sid',
);

export async function insertSession(db: Queryable, session: SessionRecord): Promise<void> {
  await db.run(sql`INSERT INTO kms_sessions (${COLUMNS}) VALUES (${session.id}, ${session.secretHash},
    ${session.subject}, ${session.username}, ${JSON.stringify(session.scopes)}, ${JSON.stringify(session.tenants)},
    ${session.createdAt}, ${session.lastSeenAt}, ${session.expiresAt}, ${session.identitySid ?? null})`);
}

export async function findSession(db: Queryable, id: string): Promise<SessionRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT ${COLUMNS} FROM kms_sessions WHERE id = ${id}`);
  return row
    ? {
        id: row.id,
        secretHash: row.secret_hash,
        subject: row.subject,
        username: row.username,
        scopes: JSON.parse(row.scopes) as string[],
        tenants: JSON.parse(row.tenants) as string[],
        createdAt: row.created_at,
        lastSeenAt: row.last_seen_at,
        expiresAt: row.expires_at,
        identitySid: row.identity_sid,
      }
    : undefined;
}

export async function touchSession(db: Queryable, id: string, at: string): Promise<void> {
  await db.run(sql`UPDATE kms_sessions SET last_seen_at = ${at} WHERE id = ${id}`);
}

export async function deleteSession(db: Queryable, id: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE id = ${id}`);
}

/** Ends every session of a principal (its password, roles or tenants changed, or it was deleted). */
export async function deleteSessionsOf(db: Queryable, subject: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE subject = ${subject}`);
}

/** Ends the sessions made by one Identity session (back-channel logout), only if they are `subject`'s when given. */
export async function deleteSessionsOfIdentitySession(db: Queryable, sid: string, subject?: string): Promise<number> {
  return subject === undefined
    ? db.run(sql`DELETE FROM kms_sessions WHERE identity_sid = ${sid}`)
    : db.run(sql`DELETE FROM kms_sessions WHERE identity_sid = ${sid} AND subject = ${subject}`);
}

/** Ends every session a user started through Identity (a back-channel logout that names no session). */
export async function deleteIdentitySessionsOf(db: Queryable, subject: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE subject = ${subject} AND identity_sid IS NOT NULL`);
}

/** Ends every session of a realm's users (subjects are `<realm id>/<user id>`). */
export async function deleteSessionsOfRealm(db: Queryable, realmId: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE subject LIKE ${`${realmId}/%`}`);
}

/** Sessions past their absolute end or idle since before `idleSince` (ISO-8601 text compares in order). */
export async function deleteExpiredSessions(db: Queryable, now: string, idleSince: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE expires_at <= ${now} OR last_seen_at <= ${idleSince}`);
}
