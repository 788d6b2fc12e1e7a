/**
 * Consecutive failed sign-ins per username, in the database so every KMS instance counts the same
 * failures and honours the same lockout. A failure is counted in one statement, so parallel guesses are
 * all counted.
 */
import { sql } from 'drizzle-orm';
import type { Queryable } from '@cryptoutil/infra';

export interface LoginFailures {
  failures: number;
  lockedUntilMs: number;
}

export async function findLoginFailures(db: Queryable, username: string): Promise<LoginFailures | undefined> {
  const [row] = await db.all<{ failures: number | string; locked_until_ms: number | string }>(
    sql`SELECT failures, locked_until_ms FROM kms_login_failures WHERE username = ${username}`,
  );
  return row && { failures: Number(row.failures), lockedUntilMs: Number(row.locked_until_ms) };
}

/**
 * Counts one failure: the count goes up by one, or, when it reaches `maxFailures`, back to 0 with the
 * username locked until `lockUntilMs`. Returns the new count (0: this failure locked it).
 */
export async function recordLoginFailure(
  db: Queryable,
  username: string,
  maxFailures: number,
  lockUntilMs: number,
  nowMs: number,
): Promise<number> {
  const locksAtOnce = maxFailures <= 1;
  const [row] = await db.all<{ failures: number | string }>(sql`INSERT INTO kms_login_failures
      (username, failures, locked_until_ms, updated_ms)
    VALUES (${username}, ${locksAtOnce ? 0 : 1}, ${locksAtOnce ? lockUntilMs : 0}, ${nowMs})
    ON CONFLICT (username) DO UPDATE SET
      failures = CASE WHEN kms_login_failures.failures + 1 >= ${maxFailures} THEN 0
        ELSE kms_login_failures.failures + 1 END,
      locked_until_ms = CASE WHEN kms_login_failures.failures + 1 >= ${maxFailures} THEN ${lockUntilMs}
        ELSE kms_login_failures.locked_until_ms END,
      updated_ms = ${nowMs}
    RETURNING failures`);
  return Number(row?.failures ?? 0);
}

/** A successful sign-in clears the count. */
export async function clearLoginFailures(db: Queryable, username: string): Promise<void> {
  await db.run(sql`DELETE FROM kms_login_failures WHERE username = ${username}`);
}

/** Forgets counts untouched since `beforeMs` whose lockout is over (run by the periodic sweep). */
export async function deleteStaleLoginFailures(db: Queryable, beforeMs: number): Promise<number> {
  return db.run(sql`DELETE FROM kms_login_failures WHERE updated_ms < ${beforeMs} AND locked_until_ms < ${beforeMs}`);
}
