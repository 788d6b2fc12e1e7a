/**
 * The passkey steps of the interaction (identity.md "Passkeys"):
 * - second factor: after the password, a user with a passkey answers with it (or with TOTP, if enrolled);
 * - enrolment: a user an administrator marked `passkey_required` registers one after every factor they
 *   already had has passed;
 * - passwordless: the login page's "Sign in with a passkey" completes the login alone.
 * Every POST checks the CSRF token; challenges belong to the interaction (see domain/passkeys.ts).
 * `passkeySteps` gives routes.ts the three places where the password flow hands over.
 */
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import helmet from 'helmet';
import type Provider from 'oidc-provider';
import { ValidationError, type AuditLog, type Database } from '@cryptoutil/infra';
import { findClient } from '../data/client-repository.js';
import { findUserById, updateUser, type UserRecord } from '../data/user-repository.js';
import { recordEvent } from '../domain/audit-event.js';
import type { LoginPolicy } from '../domain/login.js';
import {
  authenticationOptions,
  completeRegistration,
  hasPasskey,
  passkeysUsable,
  registrationOptions,
  verifyPasskey,
  type RelyingParty,
} from '../domain/passkeys.js';
import type { PendingSecondFactor } from '../domain/second-factor.js';
import { assertCsrf, csrfToken } from './csrf.js';
import { formField, noStore, pendingSecondFactor, type InteractionDetails } from './interaction-request.js';
import {
  PASSKEY_SCRIPT_PATH,
  renderPasskeyEnrolPage,
  renderPasskeyPage,
  renderPasswordlessForm,
} from './passkey-views.js';
import { renderLoginPage, renderTotpPage } from './views.js';

/** From `src` (tests) and `dist` (built) alike: the assets folder is two levels up. */
export const PASSKEY_SCRIPT_FILE = fileURLToPath(new URL('../../assets/passkey.js', import.meta.url));

const FAILED_PASSKEY = 'That passkey was not accepted. Try again.';
const FAILED_ENROLMENT = 'The passkey could not be added. Try again.';
const FAILED_PASSWORDLESS = 'That passkey could not sign you in.';

export interface PasskeyOptions {
  audit?: AuditLog;
  provider: () => Provider;
  db: Database;
  policy: LoginPolicy;
  rp: RelyingParty;
}

/** The interaction pages' policy plus scripts from Identity's own origin (the passkey script only). */
const PASSKEY_PAGE_CSP = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
});

/** The browser's WebAuthn answer (JSON text; an attestation can be a few kilobytes). */
function responseField(req: Request): string {
  return formField(req, 'response', {
    maxLength: 32_768,
    detail: 'response is required: use the button, with JavaScript on.',
  });
}

/** What routes.ts calls at the hand-over points of the password flow. */
export interface PasskeySteps {
  /** The login page's passwordless form (a fresh challenge; `csrf` the page's), or nothing when passkeys are off. */
  loginForm(uid: string, csrf: string): Promise<{ passkeyForm?: string }>;
  /** After a correct password: true when a passkey step took over the answer. */
  afterPassword(req: Request, res: Response, details: InteractionDetails, user: UserRecord): Promise<boolean>;
  /** After the TOTP step passed (`amr` so far): true when a required passkey enrolment took over. */
  afterTotp(
    req: Request,
    res: Response,
    details: InteractionDetails,
    user: UserRecord,
    amr: string[],
  ): Promise<boolean>;
}

export function passkeys(options: PasskeyOptions): { router: Router; steps: PasskeySteps } {
  const { db, rp } = options;
  const usable = passkeysUsable(rp);
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  const record = (event: string, actor: string | null, details: InteractionDetails, reason: string | null) =>
    recordEvent(options.audit, { event, actor, resource: String(details.params.client_id), reason });

  const loginForm: PasskeySteps['loginForm'] = async (uid, csrf) => {
    if (!usable) return {};
    const authOptions = await authenticationOptions(db, rp, uid);
    return { passkeyForm: renderPasswordlessForm({ uid, csrf, options: authOptions }) };
  };

  const sendPasskeyPage = async (req: Request, res: Response, details: InteractionDetails, error?: string) => {
    const pending = pendingSecondFactor(details);
    const user = pending ? await findUserById(db, pending.accountId) : undefined;
    if (!user) throw new ValidationError('Sign in with your password first.', { code: 'invalid_interaction' });
    const authOptions = await authenticationOptions(db, rp, details.uid, user);
    res
      .status(error ? 401 : 200)
      .type('html')
      .send(
        renderPasskeyPage({
          uid: details.uid,
          csrf: csrfToken(req, res),
          options: authOptions,
          error,
          totpHref: user.totpSecret !== null ? `/interaction/${details.uid}/totp` : undefined,
        }),
      );
  };

  const sendEnrolPage = async (
    req: Request,
    res: Response,
    details: InteractionDetails,
    user: UserRecord,
    error?: string,
  ) => {
    const createOptions = await registrationOptions(db, rp, user, details.uid);
    res
      .status(error ? 400 : 200)
      .type('html')
      .send(renderPasskeyEnrolPage({ uid: details.uid, csrf: csrfToken(req, res), options: createOptions, error }));
  };

  const startEnrolment = async (
    req: Request,
    res: Response,
    details: InteractionDetails,
    user: UserRecord,
    amr: string[],
  ) => {
    details.result = { second_factor: { accountId: user.id, passkey: 'enrol', amr } satisfies PendingSecondFactor };
    await details.persist();
    await sendEnrolPage(req, res, details, user);
  };

  const steps: PasskeySteps = {
    loginForm,
    async afterPassword(req, res, details, user) {
      if (await hasPasskey(db, user.id)) {
        details.result = { second_factor: { accountId: user.id, passkey: 'verify' } satisfies PendingSecondFactor };
        await details.persist();
        await sendPasskeyPage(req, res, details);
        return true;
      }
      // With TOTP (or its enrolment) pending, that factor comes first; the passkey follows (afterTotp).
      if (!usable || !user.passkeyRequired || user.totpSecret !== null || user.totpRequired) return false;
      await startEnrolment(req, res, details, user, ['pwd']);
      return true;
    },
    async afterTotp(req, res, details, user, amr) {
      if (!usable || !user.passkeyRequired || (await hasPasskey(db, user.id))) return false;
      await startEnrolment(req, res, details, user, amr);
      return true;
    },
  };

  const router = Router();
  router.get(PASSKEY_SCRIPT_PATH, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/javascript').sendFile(PASSKEY_SCRIPT_FILE);
  });
  // Replaces the page policy on the interaction pages, which may load the passkey script.
  router.use('/interaction', PASSKEY_PAGE_CSP);

  /** The interaction at the second-factor step (the password passed), or a 400. */
  const atSecondFactor = async (req: Request, res: Response, step: 'verify' | 'enrol') => {
    const details = await options.provider().interactionDetails(req, res);
    const pending = pendingSecondFactor(details);
    if (details.prompt.name !== 'login' || pending?.passkey !== step) {
      throw new ValidationError('Sign in with your password first.', { code: 'invalid_interaction' });
    }
    return { details, pending };
  };

  router.get('/interaction/:uid/passkey', noStore, async (req, res) => {
    const { details } = await atSecondFactor(req, res, 'verify');
    await sendPasskeyPage(req, res, details);
  });

  // The TOTP page, for a user with both factors who chose the authenticator app (it posts to /totp).
  router.get('/interaction/:uid/totp', noStore, async (req, res) => {
    const { details, pending } = await atSecondFactor(req, res, 'verify');
    const user = await findUserById(db, pending.accountId);
    if (user?.totpSecret == null) throw new ValidationError('No authenticator app is enrolled.');
    res.type('html').send(
      renderTotpPage({
        uid: details.uid,
        csrf: csrfToken(req, res),
        passkeyHref: `/interaction/${details.uid}/passkey`,
      }),
    );
  });

  router.post('/interaction/:uid/passkey', noStore, form, async (req, res) => {
    assertCsrf(req);
    const { details, pending } = await atSecondFactor(req, res, 'verify');
    const result = await verifyPasskey(db, rp, details.uid, responseField(req), options.policy, pending.accountId);
    if (!result.ok) {
      record('identity.passkey.failed', result.userId, details, result.reason);
      if (result.lockedNow) record('identity.login.locked', result.userId, details, 'too_many_failures');
      await sendPasskeyPage(req, res, details, FAILED_PASSKEY);
      return;
    }
    record('identity.passkey.verified', result.user.id, details, null);
    await options
      .provider()
      .interactionFinished(
        req,
        res,
        { login: { accountId: result.user.id, amr: ['pwd', 'hwk'] } },
        { mergeWithLastSubmission: false },
      );
  });

  router.post('/interaction/:uid/passkey/enrol', noStore, form, async (req, res) => {
    assertCsrf(req);
    const { details, pending } = await atSecondFactor(req, res, 'enrol');
    const user = await findUserById(db, pending.accountId);
    if (!user?.enabled) throw new ValidationError('This account cannot sign in.', { code: 'invalid_interaction' });
    const result = await completeRegistration(db, rp, user, details.uid, responseField(req));
    if (!result.ok) {
      record('identity.passkey.enrol_failed', user.id, details, result.reason);
      await sendEnrolPage(req, res, details, user, FAILED_ENROLMENT);
      return;
    }
    await updateUser(db, user.id, { passkeyRequired: false }, new Date().toISOString());
    record('identity.passkey.enrolled', user.id, details, null);
    await options
      .provider()
      .interactionFinished(
        req,
        res,
        { login: { accountId: user.id, amr: [...(pending.amr ?? ['pwd']), 'hwk'] } },
        { mergeWithLastSubmission: false },
      );
  });

  router.post('/interaction/:uid/passkey-login', noStore, form, async (req, res) => {
    assertCsrf(req);
    const provider = options.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'login' || !usable) {
      throw new ValidationError('This step is not a login.', { code: 'invalid_interaction' });
    }
    const result = await verifyPasskey(db, rp, details.uid, responseField(req), options.policy);
    if (!result.ok) {
      record('identity.passkey.failed', result.userId, details, result.reason);
      if (result.lockedNow) record('identity.login.locked', result.userId, details, 'too_many_failures');
      const client = await findClient(db, String(details.params.client_id));
      const csrf = csrfToken(req, res);
      res
        .status(401)
        .type('html')
        .send(
          renderLoginPage({
            uid: details.uid,
            clientName: String(client?.metadata.client_name ?? details.params.client_id),
            csrf,
            error: FAILED_PASSWORDLESS,
            ...(await loginForm(details.uid, csrf)),
          }),
        );
      return;
    }
    record('identity.login.passkey', result.user.id, details, null);
    // A passkey with user verification is two factors in one: the device and its PIN or biometric.
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: result.user.id, amr: ['hwk', 'mfa'] } },
      { mergeWithLastSubmission: false },
    );
  });

  return { router, steps };
}
