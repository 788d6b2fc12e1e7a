/**
 * RFC 7662 introspection and RFC 7009 revocation for JWT access tokens (identity.md): oidc-provider
 * refuses both for structured tokens, so this runs in front of its endpoints. A JWT access token is
 * active when its signature, issuer, type and expiry hold, its `jti` is not on the deny-list, and its
 * grant (`gid`) still exists, so revoking a grant, reusing a refresh token or logging out ends it.
 * Anything that is not a JWT goes on to oidc-provider unchanged.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import { basicCredentials, type AuditLog, type Database } from '@cryptoutil/infra';
import { presentedClientId, recordEvent } from '../domain/audit-event.js';
import { findClient } from '../data/client-repository.js';
import { isJtiRevoked, revokeJti } from '../data/revoked-token-repository.js';
import { verifyClientSecret } from './client-secrets.js';

export interface JwtTokenEndpointOptions {
  db: Database;
  issuer: string;
  provider: () => Provider;
  /** The public JWKS the tokens are verified with (current and recently rotated keys). */
  publicJwks: () => JSONWebKeySet;
  /** Reloads the signing keys if another instance rotated them (asked only for a `kid` not known here). */
  syncKeys?: () => Promise<void>;
  /** Records revocations (token `jti` only) and refused client authentications. */
  audit?: AuditLog;
}

type Body = Record<string, string | undefined>;

function looksLikeJwt(token: string | undefined): token is string {
  return typeof token === 'string' && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

function oauthError(res: Response, status: number, error: string, description: string): void {
  if (status === 401) res.set('WWW-Authenticate', 'Basic realm="identity"');
  res.status(status).set('Cache-Control', 'no-store').json({ error, error_description: description });
}

/** client_secret_basic or client_secret_post against the hashed secrets; returns the client id. */
async function authenticateClient(db: Database, req: Request, body: Body): Promise<string | undefined> {
  let clientId = body.client_id;
  let secret = body.client_secret;
  if (req.headers.authorization?.toLowerCase().startsWith('basic')) {
    const credentials = basicCredentials(req.headers.authorization, { formEncoded: true });
    if (!credentials) return undefined;
    clientId = credentials.user;
    secret = credentials.password;
  }
  if (!clientId || !secret) return undefined;
  const client = await findClient(db, clientId);
  if (!client?.secretHash) return undefined;
  return (await verifyClientSecret(client.secretHash, secret)) ? clientId : undefined;
}

async function verifyAccessToken(
  options: Omit<JwtTokenEndpointOptions, 'audit'>,
  token: string,
  retried = false,
): Promise<JWTPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(options.publicJwks()), {
      issuer: options.issuer,
      typ: 'at+jwt',
    });
    return payload;
  } catch (error) {
    // A key another instance has just rotated in: read the current keys once, then try again.
    if (!retried && options.syncKeys && (error as { code?: string }).code === 'ERR_JWKS_NO_MATCHING_KEY') {
      await options.syncKeys();
      return verifyAccessToken(options, token, true);
    }
    return undefined;
  }
}

async function isActive(options: Omit<JwtTokenEndpointOptions, 'audit'>, payload: JWTPayload): Promise<boolean> {
  if (typeof payload.jti !== 'string' || (await isJtiRevoked(options.db, payload.jti))) return false;
  if (typeof payload.gid === 'string') return (await options.provider().Grant.find(payload.gid)) !== undefined;
  return true;
}

/**
 * The claims of a JWT access token issued here that is active now (signature, issuer, type, expiry, not on
 * the deny-list, grant alive), else undefined; token exchange uses it for its subject tokens.
 */
export async function activeAccessTokenClaims(
  options: Omit<JwtTokenEndpointOptions, 'audit'>,
  token: string,
): Promise<JWTPayload | undefined> {
  if (!looksLikeJwt(token)) return undefined;
  const payload = await verifyAccessToken(options, token);
  return payload && (await isActive(options, payload)) ? payload : undefined;
}

export function jwtTokenEndpoints(options: JwtTokenEndpointOptions): Router {
  const router = Router();
  const record = (event: string, actor: string | null, resource: string | null, reason: string | null) =>
    recordEvent(options.audit, { event, actor, resource, reason });
  const presentedClient = (req: Request, body: Body) => presentedClientId(req.headers.authorization, body.client_id);
  // Parsed here as raw bytes so that non-JWT requests reach oidc-provider with their body intact.
  const raw = express.raw({ type: 'application/x-www-form-urlencoded', limit: '56kb' });
  const parse = (req: Request): Body =>
    Object.fromEntries(new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : ''));

  router.post('/token/introspection', raw, async (req: Request, res: Response, next: NextFunction) => {
    const body = parse(req);
    if (!looksLikeJwt(body.token)) return next();
    if (!(await authenticateClient(options.db, req, body))) {
      record('identity.introspection.refused', presentedClient(req, body), null, 'invalid_client');
      return oauthError(res, 401, 'invalid_client', 'client authentication failed');
    }
    const payload = await verifyAccessToken(options, body.token);
    res.set('Cache-Control', 'no-store');
    if (!payload || !(await isActive(options, payload))) return void res.json({ active: false });
    // A DPoP-bound token keeps its `cnf` (RFC 9449 §6.2) and is of type DPoP.
    const bound = typeof (payload.cnf as { jkt?: unknown } | undefined)?.jkt === 'string';
    res.json({ ...payload, active: true, token_type: bound ? 'DPoP' : 'Bearer' });
  });

  router.post('/token/revocation', raw, async (req: Request, res: Response, next: NextFunction) => {
    const body = parse(req);
    if (!looksLikeJwt(body.token)) return next();
    const clientId = await authenticateClient(options.db, req, body);
    if (!clientId) {
      record('identity.token.revocation_refused', presentedClient(req, body), null, 'invalid_client');
      return oauthError(res, 401, 'invalid_client', 'client authentication failed');
    }
    const payload = await verifyAccessToken(options, body.token);
    // RFC 7009: an invalid or foreign token is answered 200 too; only the token's own client may revoke it.
    if (payload && payload.client_id === clientId && typeof payload.jti === 'string') {
      await revokeJti(options.db, payload.jti, (payload.exp ?? 0) * 1000);
      record('identity.token.revoked', clientId, payload.jti, null);
    } else {
      record('identity.token.revoked', clientId, null, payload ? 'not_owner' : 'invalid_token');
    }
    res.status(200).end();
  });

  return router;
}
