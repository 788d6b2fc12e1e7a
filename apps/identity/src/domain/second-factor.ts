/**
 * The TOTP step after a correct password (identity.md "MFA"): a user with an authenticator answers a
 * challenge; a user an administrator marked `totp_required` enrols one first (QR code, then a code to
 * confirm). Wrong codes count toward the same lockout as wrong passwords; each code works once.
 */
import type { Database } from '@cryptoutil/infra';
import {
  claimTotpStep,
  enrolTotp,
  findUserById,
  recordLoginSuccess,
  type UserRecord,
} from '../data/user-repository.js';
import { isLocked, recordFailure, type LoginPolicy } from './login.js';
import type { AtRestKey } from './signing-keys.js';
import { matchTotp, newTotpSecret, openTotpSecret, sealTotpSecret } from './totp.js';

/** What the sign-in still needs after the password, kept on the interaction between the two pages. */
export interface PendingSecondFactor {
  accountId: string;
  /** Present while enrolling: the new secret, sealed under the at-rest key. */
  enrolSecret?: string;
  /**
   * Passkeys: `verify` while the user answers with a passkey (or TOTP, if enrolled); `enrol` while an
   * administrator-required passkey is registered, once every factor the user had has passed.
   */
  passkey?: 'verify' | 'enrol';
  /** With `passkey: 'enrol'`: the factors already passed (`amr` values). */
  amr?: string[];
}

/** Undefined when the password is enough; otherwise the pending step (with a new secret to enrol). */
export async function secondFactorFor(user: UserRecord, key: AtRestKey): Promise<PendingSecondFactor | undefined> {
  if (user.totpSecret !== null) return { accountId: user.id };
  if (user.totpRequired) return { accountId: user.id, enrolSecret: await sealTotpSecret(newTotpSecret(), key) };
  return undefined;
}

/** `lockedNow`: this failure locked the account. */
export type SecondFactorResult =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'invalid_code' | 'locked' | 'disabled'; userId: string; lockedNow: boolean };

export async function verifySecondFactor(
  db: Database,
  pending: PendingSecondFactor,
  code: string,
  key: AtRestKey,
  policy: LoginPolicy,
): Promise<SecondFactorResult> {
  const now = policy.now?.() ?? new Date();
  const user = await findUserById(db, pending.accountId);
  if (!user?.enabled) return { ok: false, reason: 'disabled', userId: pending.accountId, lockedNow: false };
  if (isLocked(user, now)) return { ok: false, reason: 'locked', userId: user.id, lockedNow: false };
  const sealed = pending.enrolSecret ?? user.totpSecret;
  if (sealed === null) return { ok: false, reason: 'invalid_code', userId: user.id, lockedNow: false };
  const step = matchTotp(await openTotpSecret(sealed, key), code, now.getTime());
  let accepted = false;
  if (step !== undefined) {
    if (pending.enrolSecret) {
      await enrolTotp(db, user.id, pending.enrolSecret, step, now.toISOString());
      accepted = true;
    } else {
      accepted = await claimTotpStep(db, user.id, step);
    }
  }
  if (!accepted) {
    const lockedNow = await recordFailure(db, user, policy, now);
    return { ok: false, reason: 'invalid_code', userId: user.id, lockedNow };
  }
  if (user.failedLogins > 0) await recordLoginSuccess(db, user.id);
  return { ok: true, user };
}
