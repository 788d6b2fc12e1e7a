/**
 * CSRF protection for the interaction forms: a random token in a `__Host-` cookie (Secure, HttpOnly,
 * SameSite=Strict) that each form repeats; a POST whose form value differs is refused.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { ForbiddenError } from '@cryptoutil/infra';

const COOKIE = '__Host-identity-csrf';

/** The value of cookie `name` in the request, if sent. */
export function cookieValue(req: Request, name = COOKIE): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

/** The token to embed in a form; reuses the cookie's when present. */
export function csrfToken(req: Request, res: Response): string {
  const existing = cookieValue(req);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  res.cookie(COOKIE, token, { httpOnly: true, secure: true, sameSite: 'strict', path: '/' });
  return token;
}

export function assertCsrf(req: Request): void {
  const cookie = cookieValue(req) ?? '';
  const body = (req.body as { csrf?: unknown } | undefined)?.csrf;
  const given = typeof body === 'string' ? body : '';
  const ok =
    cookie.length > 0 && cookie.length === given.length && timingSafeEqual(Buffer.from(cookie), Buffer.from(given));
  if (!ok)
    throw new ForbiddenError('csrf_token_invalid', {
      detail: 'The form expired or did not come from this site; go back and try again.',
    });
}
