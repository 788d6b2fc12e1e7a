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
};

const COLUMNS = sql.raw('id, secret_hash, subject, username, scopes, tenants, created_at, last_seen_at, expires_at');

export async function insertSession(db: Queryable, session: SessionRecord): Promise<void> {
  await db.run(sql`INSERT INTO kms_sessions (${COLUMNS}) VALUES (${session.id}, ${session.secretHash},
    ${session.subject}, ${session.username}, ${JSON.stringify(session.scopes)}, ${JSON.stringify(session.tenants)},
    ${session.createdAt}, ${session.lastSeenAt}, ${session.expiresAt})`);
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

/** Ends every session of a realm's users (subjects are `<realm id>/<user id>`). */
export async function deleteSessionsOfRealm(db: Queryable, realmId: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE subject LIKE ${`${realmId}/%`}`);
}

/** Sessions past their absolute end or idle since before `idleSince` (ISO-8601 text compares in order). */
export async function deleteExpiredSessions(db: Queryable, now: string, idleSince: string): Promise<number> {
  return db.run(sql`DELETE FROM kms_sessions WHERE expires_at <= ${now} OR last_seen_at <= ${idleSince}`);
}
