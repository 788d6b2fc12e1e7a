/**
 * Express middleware for resource servers (integration.md): `guard.require(scope)` takes the bearer
 * or DPoP-bound token (RFC 9449, with its proof), validates it (revocation too for sensitive operations), checks the scope after expanding
 * coarse scopes, and attaches the principal. Refusals are one shape: `401`/`403` with RFC 6750
 * `WWW-Authenticate` and a body with both OAuth and RFC 9457 fields, at the configured detail level.
 */
import type { Request, RequestHandler, Response } from 'express';
import { PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE } from '@cryptoutil/infra';
import { requestHtu } from './dpop-proof.js';
import { expandScopes, type ScopeImplications } from './scopes.js';
import { TokenValidationError } from './token-errors.js';
import type { Principal, TokenPresentation, TokenValidator } from './token-validator.js';

export type ErrorDetailLevel = 'minimal' | 'standard' | 'verbose';

export interface BearerGuardOptions {
  validator: TokenValidator;
  /** The `realm` of `WWW-Authenticate`. */
  realm: string;
  /**
   * The URL clients call this server at (behind a proxy, the proxy's): DPoP proofs must name it (`htu`).
   * Without it DPoP-bound tokens are refused.
   */
  publicUrl?: string;
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

/** The token of `Authorization: Bearer <token>` or `Authorization: DPoP <token>`, with its scheme. */
export function presentedToken(req: Request): { scheme: 'Bearer' | 'DPoP'; token: string } | undefined {
  const match = /^(Bearer|DPoP) +([^\s]+) *$/i.exec(req.get('authorization') ?? '');
  if (!match?.[1] || !match[2]) return undefined;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

/**
 * What `TokenValidator.validate` needs to know about how a request presented its token: the scheme and,
 * for DPoP, the proof header, the method and the URL as the client called it (`publicUrl` + path).
 */
export function tokenPresentation(
  req: Request,
  scheme: 'Bearer' | 'DPoP',
  publicUrl: string | undefined,
): TokenPresentation {
  if (scheme !== 'DPoP') return { scheme };
  return {
    scheme,
    dpop: {
      proof: req.get('dpop'),
      method: req.method,
      url: publicUrl === undefined ? '' : requestHtu(publicUrl, req.originalUrl),
    },
  };
}

const TITLES: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' };

const quoted = (value: string) => `"${value.replace(/["\\]/g, '')}"`;

export function sendTokenError(
  req: Request,
  res: Response,
  error: TokenValidationError,
  options: {
    realm: string;
    errorDetail?: ErrorDetailLevel;
    otherSchemes?: readonly string[];
    /** DPoP proof algorithms this server accepts: a `DPoP` challenge with `algs` joins `Bearer` (RFC 9449 §7.1). */
    dpopAlgorithms?: readonly string[];
  },
): void {
  const level = options.errorDetail ?? 'standard';
  if (error.status !== 503) {
    // The error goes on the scheme it concerns: the one named by the error, else the one the request used.
    const errorScheme = error.details.scheme ?? presentedToken(req)?.scheme ?? 'Bearer';
    const challenge = (scheme: 'Bearer' | 'DPoP') => {
      const parts = [`realm=${quoted(options.realm)}`];
      if (scheme === errorScheme) {
        if (error.oauthError) parts.push(`error=${quoted(error.oauthError)}`);
        if (error.oauthError && level !== 'minimal') parts.push(`error_description=${quoted(error.description)}`);
        if (error.details.requiredScope) parts.push(`scope=${quoted(error.details.requiredScope)}`);
      }
      if (scheme === 'DPoP') parts.push(`algs=${quoted((options.dpopAlgorithms ?? []).join(' '))}`);
      return `${scheme} ${parts.join(', ')}`;
    };
    const dpop = options.dpopAlgorithms !== undefined && options.dpopAlgorithms.length > 0;
    // Other ways to authenticate (e.g. Basic, ApiKey) are offered too when no credential was accepted.
    const others = error.status === 401 ? (options.otherSchemes ?? []) : [];
    res.set(
      'WWW-Authenticate',
      [
        challenge('Bearer'),
        ...(dpop ? [challenge('DPoP')] : []),
        ...others.map((scheme) => `${scheme} realm=${quoted(options.realm)}`),
      ].join(', '),
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
          const presented = presentedToken(req);
          const principal = await options.validator.validate(presented?.token, {
            ...requirement,
            ...(presented ? tokenPresentation(req, presented.scheme, options.publicUrl) : {}),
          });
          assertScope(principal.scopes, scope, implications);
          principals.set(req, principal);
          next();
        } catch (error) {
          if (!(error instanceof TokenValidationError)) return next(error);
          // DPoP is offered only where proofs can be checked (the public URL is known).
          const dpopAlgorithms = options.publicUrl === undefined ? undefined : options.validator.dpop.algorithms;
          sendTokenError(req, res, error, { ...options, ...(dpopAlgorithms ? { dpopAlgorithms } : {}) });
        }
      };
    },
  };
}

export type BearerGuard = ReturnType<typeof bearerGuard>;
