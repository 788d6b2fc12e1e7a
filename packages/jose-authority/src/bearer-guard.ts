/**
 * Express middleware for resource servers (integration.md): `guard.require(scope)` takes the bearer
 * token, validates it (revocation too for sensitive operations), checks the scope after expanding
 * coarse scopes, and attaches the principal. Refusals are one shape: `401`/`403` with RFC 6750
 * `WWW-Authenticate` and a body with both OAuth and RFC 9457 fields, at the configured detail level.
 */
import type { Request, RequestHandler, Response } from 'express';
import { PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE } from '@cryptoutil/infra';
import { expandScopes, type ScopeImplications } from './scopes.js';
import { TokenValidationError } from './token-errors.js';
import type { Principal, TokenValidator } from './token-validator.js';

export type ErrorDetailLevel = 'minimal' | 'standard' | 'verbose';

export interface BearerGuardOptions {
  validator: TokenValidator;
  /** The `realm` of `WWW-Authenticate`. */
  realm: string;
  errorDetail?: ErrorDetailLevel;
  implications?: ScopeImplications;
}

const principals = new WeakMap<Request, Principal>();

/** The principal a guard attached to this request. */
export function principalOf(req: Request): Principal | undefined {
  return principals.get(req);
}

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), if that is the header. */
export function bearerToken(req: Request): string | undefined {
  const match = /^Bearer +([^\s]+) *$/i.exec(req.get('authorization') ?? '');
  return match?.[1];
}

const TITLES: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' };

const quoted = (value: string) => `"${value.replace(/["\\]/g, '')}"`;

export function sendTokenError(
  req: Request,
  res: Response,
  error: TokenValidationError,
  options: { realm: string; errorDetail?: ErrorDetailLevel; otherSchemes?: readonly string[] },
): void {
  const level = options.errorDetail ?? 'standard';
  if (error.status !== 503) {
    const parts = [`realm=${quoted(options.realm)}`];
    if (error.oauthError) parts.push(`error=${quoted(error.oauthError)}`);
    if (error.oauthError && level !== 'minimal') parts.push(`error_description=${quoted(error.description)}`);
    if (error.details.requiredScope) parts.push(`scope=${quoted(error.details.requiredScope)}`);
    // Other ways to authenticate (e.g. Basic, ApiKey) are offered too when no credential was accepted.
    const others = error.status === 401 ? (options.otherSchemes ?? []) : [];
    res.set(
      'WWW-Authenticate',
      [`Bearer ${parts.join(', ')}`, ...others.map((scheme) => `${scheme} realm=${quoted(options.realm)}`)].join(', '),
    );
  }
  const body: Record<string, unknown> = {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: TITLES[error.status],
    status: error.status,
    code: error.code,
    error: error.oauthError ?? error.code,
  };
  if (level !== 'minimal') {
    Object.assign(body, {
      detail: error.description,
      error_description: error.description,
      instance: req.originalUrl.split('?')[0],
      ...(error.details.requiredScope ? { required_scope: error.details.requiredScope } : {}),
    });
  }
  if (level === 'verbose') {
    Object.assign(body, {
      ...(error.details.providedScopes ? { provided_scopes: error.details.providedScopes } : {}),
      ...(error.details.claim ? { claim: error.details.claim } : {}),
    });
  }
  res.status(error.status).set('Cache-Control', 'no-store').type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** Throws `insufficient_scope` unless the granted scopes, expanded, include `scope`. */
export function assertScope(granted: Iterable<string>, scope: string, implications: ScopeImplications): void {
  const expanded = expandScopes(granted, implications);
  if (!expanded.has(scope)) {
    throw new TokenValidationError('insufficient_scope', `The caller lacks the scope ${scope}.`, {
      requiredScope: scope,
      providedScopes: [...expanded],
    });
  }
}

export function bearerGuard(options: BearerGuardOptions) {
  const implications = options.implications ?? {};
  return {
    /** Needs a valid token whose (expanded) scopes include `scope`. */
    require(scope: string, requirement: { sensitive?: boolean } = {}): RequestHandler {
      return async (req, res, next) => {
        try {
          const principal = await options.validator.validate(bearerToken(req), requirement);
          assertScope(principal.scopes, scope, implications);
          principals.set(req, principal);
          next();
        } catch (error) {
          if (!(error instanceof TokenValidationError)) return next(error);
          sendTokenError(req, res, error, options);
        }
      };
    },
  };
}

export type BearerGuard = ReturnType<typeof bearerGuard>;
