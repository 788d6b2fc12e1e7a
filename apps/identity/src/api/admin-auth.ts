/**
 * Who may use the admin API (identity.md "Listeners"): a caller with a client certificate from the
 * project CA whose common name is on the allow-list, or a caller presenting the admin token (read from
 * a secret file) as a bearer token. Anything else is `401` with `WWW-Authenticate`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Request, RequestHandler } from 'express';
import { UnauthorizedError } from '@cryptoutil/infra';

export interface AdminAuthOptions {
  /** The admin token; absent: tokens are not accepted. */
  token?: string | undefined;
  /** Client certificate common names that are administrators. */
  certificateNames: readonly string[];
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

function certificateName(req: Request): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  const name = socket.getPeerCertificate().subject?.CN;
  return typeof name === 'string' ? name : undefined;
}

function bearerToken(req: Request): string | undefined {
  const match = /^Bearer ([\x21-\x7e]+)$/.exec(req.get('authorization') ?? '');
  return match?.[1];
}

export function adminAuth(options: AdminAuthOptions): RequestHandler {
  const expected = options.token === undefined ? undefined : digest(options.token);
  const names = new Set(options.certificateNames);
  return (req, res, next) => {
    const presented = bearerToken(req);
    if (presented !== undefined && expected && timingSafeEqual(digest(presented), expected)) {
      res.locals.adminActor = 'admin-token';
      return next();
    }
    const name = presented === undefined ? certificateName(req) : undefined;
    if (name !== undefined && names.has(name)) {
      res.locals.adminActor = `certificate/${name}`;
      return next();
    }
    next(
      new UnauthorizedError(presented === undefined ? 'authentication_required' : 'invalid_token', {
        detail: 'Use an administrator client certificate or the admin token.',
        headers: { 'WWW-Authenticate': 'Bearer realm="identity-admin"' },
      }),
    );
  };
}
