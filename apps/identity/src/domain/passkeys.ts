/**
 * Passkeys (identity.md "Passkeys"): WebAuthn credentials as a second factor after the password, or alone
 * (passwordless, user verification required). `@simplewebauthn/server` checks the ceremonies; this module
 * keeps the rules around them: one challenge per interaction and purpose, taken once, short-lived and in
 * the database; the signature counter only moves forward (compare-and-set); failures of a known user count
 * toward the same lockout as wrong passwords.
 */
import { isIP } from 'node:net';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { Database } from '@cryptoutil/infra';
import { findUserById, recordLoginSuccess, type UserRecord } from '../data/user-repository.js';
import {
  findWebAuthnCredential,
  hasWebAuthnCredential,
  insertWebAuthnCredential,
  listWebAuthnCredentials,
  putWebAuthnChallenge,
  recordWebAuthnUse,
  takeWebAuthnChallenge,
  type ChallengePurpose,
} from '../data/webauthn-credential-repository.js';
import { isLocked, recordFailure, type LoginPolicy } from './login.js';

/** Who the browser talks to: the RP id (a host) and the origins it may report. */
export interface RelyingParty {
  id: string;
  name: string;
  origins: string[];
}

/** How long a challenge answers (the browser's own ceremony timeout is shorter). */
export const CHALLENGE_TTL_MS = 5 * 60_000;
const CEREMONY_TIMEOUT_MS = 120_000;

/** The relying party of an issuer: its host and origin unless configured (a proxy in front). */
export function relyingPartyFor(
  issuer: string,
  settings: { rp_id?: string | undefined; origins?: string[] | undefined; rp_name: string },
): RelyingParty {
  const url = new URL(issuer);
  return {
    id: settings.rp_id ?? url.hostname,
    name: settings.rp_name,
    origins: (settings.origins ?? [url.origin]).map((origin) => new URL(origin).origin),
  };
}

/** Browsers refuse an IP address as RP id, so the pages offer passkeys only on a host name. */
export function passkeysUsable(rp: RelyingParty): boolean {
  return isIP(rp.id.replace(/^\[|\]$/g, '')) === 0;
}

/** The user handle a passkey stores: the user's id (no personal data), as bytes. */
function userHandle(user: UserRecord): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(user.id, 'utf8'));
}

const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*$/);
const transports = z.array(z.string().max(32)).max(16).optional();
const registrationSchema = z.object({
  id: b64url.min(1),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  response: z.object({ clientDataJSON: b64url, attestationObject: b64url, transports }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});
const authenticationSchema = z.object({
  id: b64url.min(1),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: b64url.optional(),
  }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

/** The browser's answer (a JSON text from the form), or undefined when it is not one. */
function parseResponse<T>(schema: z.ZodType<T>, text: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function newChallenge(
  db: Database,
  binding: string,
  purpose: ChallengePurpose,
  challenge: string,
  userId: string | null,
  now: number,
): Promise<void> {
  await putWebAuthnChallenge(db, { binding, purpose, challenge, userId, expiresAt: now + CHALLENGE_TTL_MS }, now);
}

/** Options for registering a new passkey for `user` in interaction `binding` (its challenge stored). */
export async function registrationOptions(
  db: Database,
  rp: RelyingParty,
  user: UserRecord,
  binding: string,
  now = Date.now(),
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await listWebAuthnCredentials(db, user.id);
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.username,
    userDisplayName: user.name ?? user.username,
    userID: userHandle(user),
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    // Discoverable, so the same passkey also signs in without a username or password.
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    excludeCredentials: existing.map((credential) => ({
      id: credential.id,
      transports: credential.transports as AuthenticatorTransportFuture[],
    })),
  });
  await newChallenge(db, binding, 'register', options.challenge, user.id, now);
  return options;
}

export type RegistrationFailure = 'invalid_response' | 'expired_challenge' | 'verification_failed' | 'duplicate';
export type RegistrationResult = { ok: true; credentialId: string } | { ok: false; reason: RegistrationFailure };

/** Verifies the browser's registration answer against the interaction's challenge and stores the passkey. */
export async function completeRegistration(
  db: Database,
  rp: RelyingParty,
  user: UserRecord,
  binding: string,
  responseText: string,
  now = Date.now(),
): Promise<RegistrationResult> {
  const taken = await takeWebAuthnChallenge(db, binding, 'register', now);
  const response = parseResponse(registrationSchema, responseText) as RegistrationResponseJSON | undefined;
  if (!response) return { ok: false, reason: 'invalid_response' };
  if (!taken || taken.userId !== user.id) return { ok: false, reason: 'expired_challenge' };
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: taken.challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: false,
    });
  } catch {
    return { ok: false, reason: 'verification_failed' };
  }
  if (!verified.verified) return { ok: false, reason: 'verification_failed' };
  const { credential } = verified.registrationInfo;
  if (await findWebAuthnCredential(db, credential.id)) return { ok: false, reason: 'duplicate' };
  await insertWebAuthnCredential(db, {
    id: credential.id,
    userId: user.id,
    publicKey: Buffer.from(credential.publicKey).toString('base64url'),
    signCount: credential.counter,
    transports: credential.transports ?? [],
    createdAt: new Date(now).toISOString(),
  });
  return { ok: true, credentialId: credential.id };
}

/**
 * Options for an assertion in interaction `binding`: as a second factor, limited to `user`'s passkeys;
 * passwordless (no user yet), any discoverable passkey with user verification.
 */
export async function authenticationOptions(
  db: Database,
  rp: RelyingParty,
  binding: string,
  user?: UserRecord,
  now = Date.now(),
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allow = user ? await listWebAuthnCredentials(db, user.id) : [];
  const options = await generateAuthenticationOptions({
    rpID: rp.id,
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: user ? 'preferred' : 'required',
    ...(user
      ? {
          allowCredentials: allow.map((credential) => ({
            id: credential.id,
            transports: credential.transports as AuthenticatorTransportFuture[],
          })),
        }
      : {}),
  });
  await newChallenge(db, binding, user ? 'second_factor' : 'passwordless', options.challenge, user?.id ?? null, now);
  return options;
}

/** Why a passkey was refused: for the audit log only, never shown. */
export type PasskeyFailure =
  | 'invalid_response'
  | 'expired_challenge'
  | 'unknown_credential'
  | 'verification_failed'
  | 'counter_regression'
  | 'locked'
  | 'disabled';

/** `lockedNow`: this failure locked the account; `userId` null when no known passkey was presented. */
export type PasskeyResult =
  | { ok: true; user: UserRecord; credentialId: string }
  | { ok: false; reason: PasskeyFailure; userId: string | null; lockedNow: boolean };

/**
 * Verifies an assertion in interaction `binding`. With `expectedUserId` it is the second factor of that
 * user (every failure counts toward the lockout, as a wrong TOTP code does); without, a passwordless
 * sign-in (user verification required; failures of a known passkey count toward its owner's lockout).
 */
export async function verifyPasskey(
  db: Database,
  rp: RelyingParty,
  binding: string,
  responseText: string,
  policy: LoginPolicy,
  expectedUserId?: string,
): Promise<PasskeyResult> {
  const now = policy.now?.() ?? new Date();
  const purpose: ChallengePurpose = expectedUserId ? 'second_factor' : 'passwordless';
  const taken = await takeWebAuthnChallenge(db, binding, purpose, now.getTime());
  const response = parseResponse(authenticationSchema, responseText) as AuthenticationResponseJSON | undefined;
  const credential = response ? await findWebAuthnCredential(db, response.id) : undefined;
  const owner = credential && (!expectedUserId || credential.userId === expectedUserId) ? credential : undefined;
  const userId = owner?.userId ?? expectedUserId ?? null;
  const user = userId ? await findUserById(db, userId) : undefined;
  const fail = async (reason: PasskeyFailure, counts: boolean): Promise<PasskeyResult> => {
    const lockedNow = counts && user ? await recordFailure(db, user, policy, now) : false;
    return { ok: false, reason, userId: user?.id ?? null, lockedNow };
  };
  // As the second factor every failure counts (the password already named the user); passwordless only
  // those of a known passkey, so nobody locks an account out by posting noise.
  const secondFactor = expectedUserId !== undefined;
  if (!response) return fail('invalid_response', secondFactor);
  if (!owner || !user) return fail('unknown_credential', secondFactor);
  if (!user.enabled) return fail('disabled', false);
  if (isLocked(user, now)) return fail('locked', false);
  if (!taken || (taken.userId !== null && taken.userId !== user.id)) return fail('expired_challenge', secondFactor);
  if (!secondFactor && response.response.userHandle !== undefined) {
    if (response.response.userHandle !== Buffer.from(userHandle(user)).toString('base64url')) {
      return fail('verification_failed', true);
    }
  }
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: taken.challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      // The counter is compared below, once the signature has proven the assertion genuine.
      credential: { id: owner.id, publicKey: new Uint8Array(Buffer.from(owner.publicKey, 'base64url')), counter: 0 },
      requireUserVerification: !secondFactor,
    });
  } catch {
    return fail('verification_failed', true);
  }
  if (!verified.verified) return fail('verification_failed', true);
  const next = verified.authenticationInfo.newCounter;
  // A counter that does not move forward means a cloned authenticator (or a replay): refuse.
  if ((next > 0 || owner.signCount > 0) && next <= owner.signCount) return fail('counter_regression', true);
  if (!(await recordWebAuthnUse(db, owner.id, owner.signCount, next, now.toISOString()))) {
    return fail('counter_regression', true);
  }
  if (user.failedLogins > 0) await recordLoginSuccess(db, user.id);
  return { ok: true, user, credentialId: owner.id };
}

/** Whether the user has any passkey. */
export async function hasPasskey(db: Database, userId: string): Promise<boolean> {
  return hasWebAuthnCredential(db, userId);
}
