/**
 * The interaction pages oidc-provider sends browsers to: login, consent (skipped for trusted
 * first-party clients), abort. Each POST checks the CSRF token; the steps follow oidc-provider's
 * `interactionDetails` → `interactionFinished` protocol.
 */
import express, { Router, type Request, type Response } from 'express';
import type Provider from 'oidc-provider';
import { ValidationError, type Database } from '@cryptoutil/infra';
import { findClient } from '../data/client-repository.js';
import { findUserById } from '../data/user-repository.js';
import { login, type LoginPolicy } from '../domain/login.js';
import { secondFactorFor, verifySecondFactor, type PendingSecondFactor } from '../domain/second-factor.js';
import type { AtRestKey } from '../domain/signing-keys.js';
import { enrolmentQr, openTotpSecret } from '../domain/totp.js';
import { assertCsrf, csrfToken } from './csrf.js';
import { formField, noStore, pendingSecondFactor, type InteractionDetails } from './interaction-request.js';
import { renderConsentPage, renderLoginPage, renderTotpPage } from './views.js';
import type { PasskeySteps } from './passkey-routes.js';
import type { AuditLog } from '@cryptoutil/infra';
import { recordEvent } from '../domain/audit-event.js';

const FAILED_LOGIN = 'Invalid username or password.';
const FAILED_CODE = 'That code is not valid. Try the current one.';

export interface InteractionOptions {
  /** Sign-ins, second factors and consents are recorded here. */
  audit?: AuditLog;
  provider: () => Provider;
  db: Database;
  policy: LoginPolicy;
  /** Seals TOTP secrets at rest. */
  totpKey: AtRestKey;
  /** The passkey steps (passkey-routes.ts), where the password flow hands over. */
  passkeys?: PasskeySteps;
}

/** Scopes and resource scopes the consent would grant, for display and for the grant. */
interface MissingConsent {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

async function grantConsent(provider: Provider, details: InteractionDetails): Promise<string> {
  const missing = details.prompt.details as MissingConsent;
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (typeof accountId !== 'string' || typeof clientId !== 'string')
    throw new ValidationError('No session for this consent.');
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId });
  if (!grant) throw new ValidationError('The grant no longer exists.');
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

/** Grants what the consent prompt asks for and returns the browser to the authorization. */
async function finishConsent(provider: Provider, req: Request, res: Response, details: InteractionDetails) {
  const grantId = await grantConsent(provider, details);
  await provider.interactionFinished(
    req,
    res,
    { consent: details.grantId ? {} : { grantId } },
    { mergeWithLastSubmission: true },
  );
}

/** One audit event of the interaction (ids only; a failed sign-in names the username that was tried). */
function record(
  options: InteractionOptions,
  event: string,
  actor: string | null,
  clientId: string,
  reason: string | null,
): void {
  recordEvent(options.audit, { event, actor, resource: clientId, reason });
}

export function interactionRouter(options: InteractionOptions): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  const sendTotpPage = async (
    req: Request,
    res: Response,
    details: InteractionDetails,
    pending: PendingSecondFactor,
    error?: string,
  ) => {
    let enrolment: { qrDataUri: string; secret: string } | undefined;
    if (pending.enrolSecret) {
      const secret = await openTotpSecret(pending.enrolSecret, options.totpKey);
      const user = await findUserById(options.db, pending.accountId);
      enrolment = { secret, qrDataUri: (await enrolmentQr(secret, user?.username ?? 'user')).qrDataUri };
    }
    res
      .status(error ? 401 : 200)
      .type('html')
      .send(
        renderTotpPage({
          uid: details.uid,
          csrf: csrfToken(req, res),
          ...(error ? { error } : {}),
          ...(enrolment ? { enrolment } : {}),
          ...(pending.passkey === 'verify' ? { passkeyHref: `/interaction/${details.uid}/passkey` } : {}),
        }),
      );
  };

  router.get('/interaction/:uid', noStore, async (req, res) => {
    const provider = options.provider();
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id);
    const client = await findClient(options.db, clientId);
    const clientName = String(client?.metadata.client_name ?? clientId);
    const csrf = csrfToken(req, res);
    if (details.prompt.name === 'login') {
      // OIDC Core 3.1.2.1: `login_hint` pre-fills the username (the user can still change it).
      const hint = details.params.login_hint;
      const username = typeof hint === 'string' ? hint.slice(0, 256) : undefined;
      const passkey = await options.passkeys?.loginForm(details.uid, csrf);
      res
        .type('html')
        .send(renderLoginPage({ uid: details.uid, clientName, csrf, ...(username ? { username } : {}), ...passkey }));
      return;
    }
    if (client?.trusted) {
      // First-party clients marked trusted skip the consent page.
      await finishConsent(provider, req, res, details);
      return;
    }
    const missing = details.prompt.details as MissingConsent;
    const scopes = [...(missing.missingOIDCScope ?? []), ...Object.values(missing.missingResourceScopes ?? {}).flat()];
    res.type('html').send(renderConsentPage({ uid: details.uid, clientName, csrf, scopes }));
  });

  router.post('/interaction/:uid/login', noStore, form, async (req, res) => {
    assertCsrf(req);
    const provider = options.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'login')
      throw new ValidationError('This step is not a login.', { code: 'invalid_interaction' });
    const username = formField(req, 'username');
    const result = await login(options.db, username, formField(req, 'password'), options.policy);
    const clientId = String(details.params.client_id);
    record(
      options,
      result.ok ? 'identity.login.password_verified' : 'identity.login.failed',
      result.ok ? result.user.id : username,
      clientId,
      result.ok ? null : result.reason,
    );
    if (!result.ok) {
      if (result.lockedNow) record(options, 'identity.login.locked', username, clientId, 'too_many_failures');
      const client = await findClient(options.db, String(details.params.client_id));
      const csrf = csrfToken(req, res);
      res
        .status(401)
        .type('html')
        .send(
          renderLoginPage({
            uid: details.uid,
            clientName: String(client?.metadata.client_name ?? details.params.client_id),
            csrf,
            error: FAILED_LOGIN,
            username,
            ...(await options.passkeys?.loginForm(details.uid, csrf)),
          }),
        );
      return;
    }
    if (await options.passkeys?.afterPassword(req, res, details, result.user)) return;
    const pending = await secondFactorFor(result.user, options.totpKey);
    if (pending) {
      // The password passed; the interaction remembers who, until the code passes too.
      details.result = { second_factor: pending };
      await details.persist();
      await sendTotpPage(req, res, details, pending);
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: result.user.id, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
  });

  router.post('/interaction/:uid/totp', noStore, form, async (req, res) => {
    assertCsrf(req);
    const provider = options.provider();
    const details = await provider.interactionDetails(req, res);
    const pending = pendingSecondFactor(details);
    if (details.prompt.name !== 'login' || !pending) {
      throw new ValidationError('Sign in with your password first.', { code: 'invalid_interaction' });
    }
    const result = await verifySecondFactor(
      options.db,
      pending,
      formField(req, 'code'),
      options.totpKey,
      options.policy,
    );
    const clientId = String(details.params.client_id);
    record(
      options,
      result.ok ? (pending.enrolSecret ? 'identity.mfa.enrolled' : 'identity.mfa.verified') : 'identity.mfa.failed',
      result.ok ? result.user.id : result.userId,
      clientId,
      result.ok ? null : result.reason,
    );
    if (!result.ok) {
      if (result.lockedNow) record(options, 'identity.login.locked', result.userId, clientId, 'too_many_failures');
      await sendTotpPage(req, res, details, pending, FAILED_CODE);
      return;
    }
    if (await options.passkeys?.afterTotp(req, res, details, result.user, ['pwd', 'otp'])) return;
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: result.user.id, amr: ['pwd', 'otp'] } },
      { mergeWithLastSubmission: false },
    );
  });

  router.post('/interaction/:uid/confirm', noStore, form, async (req, res) => {
    assertCsrf(req);
    const provider = options.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'consent')
      throw new ValidationError('This step is not a consent.', { code: 'invalid_interaction' });
    record(
      options,
      'identity.consent.granted',
      details.session?.accountId ?? null,
      String(details.params.client_id),
      null,
    );
    await finishConsent(provider, req, res, details);
  });

  router.get('/interaction/:uid/abort', noStore, async (req, res) => {
    const result = { error: 'access_denied', error_description: 'The user cancelled.' };
    await options.provider().interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  });

  return router;
}
