/**
 * Console sign-in through Identity (mounted under `/browser/api/v1` when `auth.identity.browser_login` is
 * configured): `GET /identity/login` sends the browser to Identity, `GET /identity/callback` comes back with
 * the code and opens the session (the same cookie as the password login), `POST /identity/backchannel-logout`
 * receives Identity's logout token (OIDC Back-Channel Logout 1.0) and ends the sessions it names.
 */
import { Router } from 'express';
import { NotFoundError } from '@cryptoutil/infra';
import { LogoutTokenError } from '@cryptoutil/jose-authority';
import type { IdentityLogin } from '../domain/identity-login.js';
import { setSessionCookie } from './browser-session.js';

export const IDENTITY_CALLBACK_PATH = '/identity/callback';
export const IDENTITY_BACKCHANNEL_LOGOUT_PATH = '/identity/backchannel-logout';

/** `login()`: the use case once the listener's URL is known; undefined while starting. */
export function identityLoginRouter(login: () => IdentityLogin | undefined): Router {
  const router = Router();
  const required = (): IdentityLogin => {
    const ready = login();
    if (!ready) throw new NotFoundError();
    return ready;
  };
  // The console asks whether to offer "Sign in with cryptoutil Identity" (404 when not configured).
  router.get('/identity', (req, res) => {
    required();
    res.json({ sign_in_url: `${req.baseUrl}/identity/login` });
  });
  router.get('/identity/login', async (req, res) => {
    const url = await required().start(req.query.return_to);
    res.set('Cache-Control', 'no-store').redirect(303, url.toString());
  });
  router.get(IDENTITY_CALLBACK_PATH, async (req, res) => {
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const { cookieValue, session, returnTo } = await required().finish(query);
    setSessionCookie(res, cookieValue, session.expiresAt);
    res.set('Cache-Control', 'no-store').redirect(303, returnTo);
  });
  router.post(IDENTITY_BACKCHANNEL_LOGOUT_PATH, async (req, res) => {
    // The form body arrives raw (app.ts); the token is its only field.
    const form = Buffer.isBuffer(req.body) && req.is('application/x-www-form-urlencoded') ? req.body : undefined;
    const token = form ? new URLSearchParams(form.toString('utf8')).get('logout_token') : null;
    res.set('Cache-Control', 'no-store');
    if (typeof token !== 'string' || token.length === 0) {
      res.status(400).json({ error: 'invalid_request', error_description: 'logout_token is required.' });
      return;
    }
    try {
      await required().backchannelLogout(token);
    } catch (error) {
      if (!(error instanceof LogoutTokenError)) throw error;
      res.status(400).json({ error: 'invalid_request', error_description: error.message });
      return;
    }
    res.status(200).end();
  });
  return router;
}
