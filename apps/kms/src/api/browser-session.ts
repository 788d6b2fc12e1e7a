/**
 * The browser API's sign-in (kms.md, integration.md "Realm users"): `POST /login` checks a realm
 * user's password and sets the session cookie (`HttpOnly; Secure; SameSite=Strict`); `GET /session`
 * tells the page who it is and its CSRF token; `POST /logout` ends the session. Every other browser
 * route needs the session, and every state-changing one its `X-CSRF-Token` as well.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { AppError, ForbiddenError, UnauthorizedError, parseBody } from '@cryptoutil/infra';
import { assertScope, TokenValidationError } from '@cryptoutil/jose-authority';
import type { IdentityLogin } from '../domain/identity-login.js';
import { LoginRefused, type PasswordLogin } from '../domain/password-login.js';
import { KMS_SCOPE_IMPLICATIONS } from '../domain/scopes.js';
import { SessionStore, type ActiveSession } from '../domain/session.js';
import { operationOf } from './access.js';
import type { KmsPrincipal } from './authentication.js';

/** `__Host-`: the browser only accepts it Secure, host-only and for path `/`, so a sibling host cannot set it. */
export const SESSION_COOKIE = '__Host-kms_session';
export const CSRF_HEADER = 'X-CSRF-Token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const loginSchema = z.strictObject({
  username: z.string().min(1).max(128),
  password: z.string().min(1).max(1024),
});

export interface BrowserSessionOptions {
  login: PasswordLogin;
  sessions: SessionStore;
  /** Sign-in through Identity (`auth.identity.browser_login`), once the listener's URL is known. */
  identityLogin?: () => IdentityLogin | undefined;
}

function cookieValue(req: Request): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === SESSION_COOKIE) return part.slice(index + 1).trim();
  }
  return undefined;
}

const sessionJson = (session: ActiveSession) => ({
  subject: session.principal.subject,
  username: session.principal.username,
  scopes: session.principal.scopes,
  tenants: session.principal.tenants,
  csrf_token: session.csrfToken,
  expires_at: session.expiresAt,
});

export function setSessionCookie(res: Response, value: string, expiresAt: string): void {
  res.cookie(SESSION_COOKIE, value, {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    expires: new Date(expiresAt),
  });
}

const clearSessionCookie = (res: Response) =>
  res.clearCookie(SESSION_COOKIE, { httpOnly: true, secure: true, sameSite: 'strict', path: '/' });

const signInRequired = () =>
  new UnauthorizedError('authentication_required', { detail: 'Sign in with POST /browser/api/v1/login first.' });

async function requireSession(req: Request, res: Response, sessions: SessionStore): Promise<ActiveSession> {
  const session = await sessions.resolve(cookieValue(req));
  if (!session) {
    if (cookieValue(req) !== undefined) clearSessionCookie(res);
    throw signInRequired();
  }
  return session;
}

function requireCsrf(req: Request): void {
  if (SAFE_METHODS.has(req.method)) return;
  if (!SessionStore.csrfTokenMatches(cookieValue(req) ?? '', req.get(CSRF_HEADER))) {
    throw new ForbiddenError('csrf_token_invalid', {
      detail: `State-changing browser requests need the session's ${CSRF_HEADER} header (GET /browser/api/v1/session).`,
    });
  }
}

/** Login, session and logout routes (mounted under `/browser/api/v1`). */
export function browserSessionRouter(options: BrowserSessionOptions): Router {
  const router = Router();
  router.post('/login', async (req, res) => {
    const body = parseBody(loginSchema, req);
    try {
      const principal = await options.login(body.username, body.password);
      const { cookieValue: value, session } = await options.sessions.create(principal);
      setSessionCookie(res, value, session.expiresAt);
      res.set('Cache-Control', 'no-store').json(sessionJson(session));
    } catch (error) {
      if (!(error instanceof LoginRefused)) throw error;
      if (error.reason === 'locked')
        throw new AppError(429, 'login_locked', 'Too Many Requests', { detail: error.message });
      throw new UnauthorizedError('invalid_credentials', { detail: error.message });
    }
  });
  router.get('/session', async (req, res) => {
    const session = await requireSession(req, res, options.sessions);
    res.set('Cache-Control', 'no-store').json(sessionJson(session));
  });
  router.post('/logout', async (req, res) => {
    const session = await requireSession(req, res, options.sessions);
    requireCsrf(req);
    await options.sessions.destroy(session.id);
    clearSessionCookie(res);
    res.status(204).end();
  });
  return router;
}

/** In front of the browser API's resources: a live session, the CSRF token, then the operation's scope. */
export function browserAccess(sessions: SessionStore): RequestHandler {
  return async (req, res, next) => {
    const operation = operationOf(req);
    if (!operation) return next();
    const session = await requireSession(req, res, sessions);
    const principal: KmsPrincipal = { ...session.principal, method: 'session' };
    res.locals.principal = principal;
    requireCsrf(req);
    try {
      assertScope(session.principal.scopes, operation.scope, KMS_SCOPE_IMPLICATIONS);
    } catch (error) {
      if (!(error instanceof TokenValidationError)) throw error;
      throw new ForbiddenError('insufficient_scope', {
        detail: error.description,
        extensions: { required_scope: operation.scope },
      });
    }
    next();
  };
}
