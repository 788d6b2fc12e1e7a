/** End users who log in at Identity. Passwords are PBKDF2 hashes. */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface UserRecord {
  id: string;
  username: string;
  passwordHash: string;
  email: string | null;
  name: string | null;
  roles: string[];
  tenantId: string | null;
  enabled: boolean;
  demo: boolean;
  failedLogins: number;
  lockedUntil: string | null;
  /** The TOTP secret as a JWE under the at-rest key; null until the user enrols. */
  totpSecret: string | null;
  /** The user must enrol a TOTP authenticator at the next sign-in. */
  totpRequired: boolean;
  /** The user must register a passkey at the next sign-in. */
  passkeyRequired: boolean;
  createdAt: string;
  updatedAt: string;
}

type Row = {
  id: string;
  username: string;
  password_hash: string;
  email: string | null;
  name: string | null;
  roles: string;
  tenant_id: string | null;
  enabled: number;
  demo: number;
  failed_logins: number;
  locked_until: string | null;
  totp_secret: string | null;
  totp_required: number;
  passkey_required: number;
  created_at: string;
  updated_at: string;
};

function toRecord(row: Row): UserRecord {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    email: row.email,
    name: row.name,
    roles: JSON.parse(row.roles) as string[],
    tenantId: row.tenant_id,
    enabled: Number(row.enabled) === 1,
    demo: Number(row.demo) === 1,
    failedLogins: Number(row.failed_logins),
    lockedUntil: row.locked_until,
    totpSecret: row.totp_secret,
    totpRequired: Number(row.totp_required) === 1,
    passkeyRequired: Number(row.passkey_required) === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertUser(
  db: Queryable,
  user: Omit<
    UserRecord,
    'failedLogins' | 'lockedUntil' | 'totpSecret' | 'passkeyRequired' | 'createdAt' | 'updatedAt'
  > & { passkeyRequired?: boolean | undefined },
  now: string,
): Promise<void> {
  await db.run(sql`INSERT INTO identity_users
    (id, username, password_hash, email, name, roles, tenant_id, enabled, demo, failed_logins, locked_until, totp_required,
      passkey_required, created_at, updated_at)
    VALUES (${user.id}, ${user.username}, ${user.passwordHash}, ${user.email}, ${user.name}, ${JSON.stringify(user.roles)},
      ${user.tenantId}, ${user.enabled ? 1 : 0}, ${user.demo ? 1 : 0}, 0, ${null}, ${user.totpRequired ? 1 : 0},
      ${user.passkeyRequired ? 1 : 0}, ${now}, ${now})`);
}

export async function findUserById(db: Queryable, id: string): Promise<UserRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT * FROM identity_users WHERE id = ${id}`);
  return row ? toRecord(row) : undefined;
}

export async function findUserByUsername(db: Queryable, username: string): Promise<UserRecord | undefined> {
  const [row] = await db.all<Row>(sql`SELECT * FROM identity_users WHERE username = ${username}`);
  return row ? toRecord(row) : undefined;
}

/**
 * Counts one failed sign-in step in a single statement, so concurrent failures (on any instance) are all
 * counted: the count goes up by one, or, when it reaches `maxFailures`, back to 0 with the account locked
 * until `lockUntil`. Returns the new count (0: this failure locked the account).
 */
export async function recordLoginFailure(
  db: Queryable,
  id: string,
  maxFailures: number,
  lockUntil: string,
): Promise<number> {
  const [row] = await db.all<{ failed_logins: number | string }>(sql`UPDATE identity_users SET
      failed_logins = CASE WHEN failed_logins + 1 >= ${maxFailures} THEN 0 ELSE failed_logins + 1 END,
      locked_until = CASE WHEN failed_logins + 1 >= ${maxFailures} THEN ${lockUntil} ELSE locked_until END
    WHERE id = ${id}
    RETURNING failed_logins`);
  return Number(row?.failed_logins ?? 0);
}

export async function recordLoginSuccess(db: Queryable, id: string): Promise<void> {
  await db.run(sql`UPDATE identity_users SET failed_logins = 0, locked_until = ${null} WHERE id = ${id}`);
}

export async function deleteDemoUsers(db: Queryable): Promise<number> {
  return db.run(sql`DELETE FROM identity_users WHERE demo = 1`);
}

export interface UserChanges {
  passwordHash?: string | undefined;
  email?: string | null | undefined;
  name?: string | null | undefined;
  roles?: string[] | undefined;
  tenantId?: string | null | undefined;
  enabled?: boolean | undefined;
  unlock?: boolean | undefined;
  totpRequired?: boolean | undefined;
  /** Forgets the enrolled authenticator. */
  resetTotp?: boolean | undefined;
  passkeyRequired?: boolean | undefined;
}

/** Applies the given changes; returns whether the user existed. */
export async function updateUser(db: Queryable, id: string, changes: UserChanges, now: string): Promise<boolean> {
  const sets = [sql`updated_at = ${now}`];
  if (changes.passwordHash !== undefined) sets.push(sql`password_hash = ${changes.passwordHash}`);
  if (changes.email !== undefined) sets.push(sql`email = ${changes.email}`);
  if (changes.name !== undefined) sets.push(sql`name = ${changes.name}`);
  if (changes.roles !== undefined) sets.push(sql`roles = ${JSON.stringify(changes.roles)}`);
  if (changes.tenantId !== undefined) sets.push(sql`tenant_id = ${changes.tenantId}`);
  if (changes.enabled !== undefined) sets.push(sql`enabled = ${changes.enabled ? 1 : 0}`);
  if (changes.unlock) sets.push(sql`failed_logins = 0`, sql`locked_until = ${null}`);
  if (changes.totpRequired !== undefined) sets.push(sql`totp_required = ${changes.totpRequired ? 1 : 0}`);
  if (changes.passkeyRequired !== undefined) sets.push(sql`passkey_required = ${changes.passkeyRequired ? 1 : 0}`);
  if (changes.resetTotp) sets.push(sql`totp_secret = ${null}`, sql`totp_last_step = ${null}`);
  return (await db.run(sql`UPDATE identity_users SET ${sql.join(sets, sql`, `)} WHERE id = ${id}`)) === 1;
}

export async function deleteUser(db: Queryable, id: string): Promise<boolean> {
  return (await db.run(sql`DELETE FROM identity_users WHERE id = ${id}`)) === 1;
}

/** One page of users ordered by username, and how many there are in all. */
export async function listUsers(
  db: Queryable,
  page: { offset: number; limit: number },
): Promise<{ users: UserRecord[]; total: number }> {
  const rows = await db.all<Row>(
    sql`SELECT * FROM identity_users ORDER BY username ASC LIMIT ${page.limit} OFFSET ${page.offset}`,
  );
  const [count] = await db.all<{ total: number | string }>(sql`SELECT COUNT(*) AS total FROM identity_users`);
  return { users: rows.map(toRecord), total: Number(count?.total ?? 0) };
}

/** Stores a confirmed TOTP enrolment, with the time step of the code that confirmed it. */
export async function enrolTotp(
  db: Queryable,
  id: string,
  secretJwe: string,
  step: number,
  now: string,
): Promise<void> {
  await db.run(sql`UPDATE identity_users SET totp_secret = ${secretJwe}, totp_last_step = ${step}, totp_required = 0,
    updated_at = ${now} WHERE id = ${id}`);
}

/**
 * Records that the code of `step` was used, only if no code of this or a later step was used before:
 * a compare-and-set in the database, so a code is accepted once even across instances.
 */
export async function claimTotpStep(db: Queryable, id: string, step: number): Promise<boolean> {
  const changed = await db.run(sql`UPDATE identity_users SET totp_last_step = ${step}
    WHERE id = ${id} AND (totp_last_step IS NULL OR totp_last_step < ${step})`);
  return changed === 1;
}
