/**
 * Password login with throttling and lockout (identity.md "Passwords"). Every failure looks the same
 * to the caller, whether the user exists, is disabled, is locked or typed a wrong password, and an
 * unknown user costs the same PBKDF2 work as a known one.
 */
import { countLogin } from './identity-metrics.js';
import { verifyDecoyPassword, verifyPassword, type Database } from '@cryptoutil/infra';
import {
  findUserByUsername,
  recordLoginFailure,
  recordLoginSuccess,
  type UserRecord,
} from '../data/user-repository.js';
import { hasWebAuthnCredential } from '../data/webauthn-credential-repository.js';

export interface LoginPolicy {
  maxFailures: number;
  lockoutMs: number;
  now?: () => Date;
}

/** Why a sign-in failed: for the audit log and metrics only, never shown to the caller. */
export type LoginFailure = 'unknown_user' | 'wrong_password' | 'locked' | 'disabled';

/** `lockedNow`: this failure locked the account (an audit event of its own). */
export type LoginResult = { ok: true; user: UserRecord } | { ok: false; reason: LoginFailure; lockedNow: boolean };

const FAILURE_DELAY_MS = 200;

export async function login(
  db: Database,
  username: string,
  password: string,
  policy: LoginPolicy,
): Promise<LoginResult> {
  const now = policy.now?.() ?? new Date();
  const user = await findUserByUsername(db, username);
  if (!user) {
    await verifyDecoyPassword(password);
    countLogin('unknown_user');
    return { ok: false, reason: 'unknown_user', lockedNow: false };
  }
  const locked = isLocked(user, now);
  const matches = await verifyPassword(user.passwordHash, password);
  if (matches && !locked && user.enabled) {
    // With a second factor, failures are only cleared once that factor passes too (no free guesses).
    if (user.failedLogins > 0 && user.totpSecret === null && !(await hasWebAuthnCredential(db, user.id))) {
      await recordLoginSuccess(db, user.id);
    }
    countLogin('success');
    return { ok: true, user };
  }
  const lockedNow = !matches && (await recordFailure(db, user, policy, now));
  const reason = !matches ? 'wrong_password' : locked ? 'locked' : 'disabled';
  countLogin(reason);
  return { ok: false, reason, lockedNow };
}

/**
 * Counts a failed sign-in step (wrong password or wrong second-factor code) atomically in the database,
 * so parallel guesses on any number of instances are all counted; then answers a little later the more
 * consecutive failures there were. The account locks for a while at `maxFailures`. True when this failure
 * locked it.
 */
export async function recordFailure(
  db: Database,
  user: UserRecord,
  policy: LoginPolicy,
  now = new Date(),
): Promise<boolean> {
  const lockUntil = new Date(now.getTime() + policy.lockoutMs).toISOString();
  const failures = await recordLoginFailure(db, user.id, policy.maxFailures, lockUntil);
  const locks = failures === 0;
  await new Promise((resolve) =>
    setTimeout(resolve, Math.min((locks ? policy.maxFailures : failures) * FAILURE_DELAY_MS, 2000)),
  );
  return locks;
}

/** Whether the account is locked at `now`. */
export function isLocked(user: UserRecord, now = new Date()): boolean {
  return user.lockedUntil !== null && new Date(user.lockedUntil) > now;
}
