/**
 * Validates bearer access tokens for a resource server (integration.md "Token validation"): JWKS from
 * the issuer's discovery document (cached), RFC 9068 `at+jwt` type, algorithm allow-list on the
 * protected header (`none` and HMAC never), issuer, audience and times with clock tolerance, then, as
 * the revocation mode asks, introspection. The result is a typed principal.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { JWS_ALGORITHMS } from './algorithms.js';
import {
  DpopProofVerifier,
  MemoryDpopReplayStore,
  type DpopPresentation,
  type DpopProofOptions,
  type DpopReplayStore,
} from './dpop-proof.js';
import { RevocationChecker, type IntrospectionAuth, type RevocationMode } from './introspection.js';
import { JwksCache } from './jwks-cache.js';
import { parseScopes } from './scopes.js';
import { TokenValidationError } from './token-errors.js';

/** Asymmetric JWS algorithms only: `none` and HMAC (whose key a resource server would share) never. */
export const DEFAULT_TOKEN_ALGORITHMS: readonly string[] = JWS_ALGORITHMS.filter((alg) => !alg.startsWith('HS'));

/** How the token was presented: its `Authorization` scheme and, for DPoP, the proof and the request. */
export interface TokenPresentation {
  sensitive?: boolean;
  /** `Bearer` unless told. */
  scheme?: 'Bearer' | 'DPoP';
  dpop?: DpopPresentation;
}

/** The key thumbprint a DPoP-bound token names (`cnf.jkt`), if it is bound. */
export function boundKeyThumbprint(claims: JWTPayload): string | undefined {
  const cnf = claims.cnf as { jkt?: unknown } | undefined;
  return typeof cnf?.jkt === 'string' ? cnf.jkt : undefined;
}

export interface TokenValidatorOptions {
  /** Expected `iss`; its discovery document names the JWKS and introspection endpoints. */
  issuer: string;
  /** Expected `aud` (one of). */
  audience: string | readonly string[];
  /** How to reach the issuer (e.g. a fetch that trusts the project CA, with a client certificate). */
  fetch?: typeof fetch;
  jwksCacheTtlMs?: number;
  jwksCooldownMs?: number;
  clockToleranceSeconds?: number;
  /** Only asymmetric algorithms are accepted, whatever is listed here. */
  algorithms?: readonly string[];
  revocation?: { mode?: RevocationMode; intervalMs?: number; auth?: IntrospectionAuth };
  /**
   * DPoP-bound tokens (RFC 9449): proof age, skew and algorithms, and where used proof ids are kept
   * (default this process's memory; several instances need a shared store).
   */
  dpop?: Omit<DpopProofOptions, 'replay' | 'now'> & { replay?: DpopReplayStore };
  /** How many verified tokens to remember (default 10,000). */
  verifiedTokenCacheSize?: number;
  /** Timeout for each call to the issuer. */
  timeoutMs?: number;
  now?: () => number;
}

/** Claims the validator reads itself; every other claim is kept in `custom`. */
const KNOWN_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'client_id',
  'act',
  'scope',
  'scp',
  'tenant_id',
  'tenant_ids',
  'roles',
  'gid',
  'auth_time',
  'acr',
  'amr',
  'azp',
  'sid',
  'cnf',
  'name',
  'given_name',
  'family_name',
  'middle_name',
  'nickname',
  'preferred_username',
  'profile',
  'picture',
  'website',
  'email',
  'email_verified',
  'gender',
  'birthdate',
  'zoneinfo',
  'locale',
  'phone_number',
  'phone_number_verified',
  'address',
  'updated_at',
]);

/** Who called, as the token says. */
export interface Principal {
  subject: string;
  clientId: string | undefined;
  /**
   * Who acts for the subject, when the token was delegated (RFC 8693 token exchange): `act.sub`, the
   * current actor; earlier actors, if any, are nested in `claims.act.act`. Undefined for a direct token.
   */
  actor: string | undefined;
  /** Scopes as granted (before any implication is expanded). */
  scopes: readonly string[];
  tenantId: string | undefined;
  /** Every tenant the token names (`tenant_id` first, then `tenant_ids`). */
  tenantIds: readonly string[];
  roles: readonly string[];
  tokenId: string | undefined;
  issuer: string;
  audience: readonly string[];
  expiresAt: number;
  /** The whole verified payload, standard claims included. */
  claims: Readonly<JWTPayload>;
  /** Claims that are neither registered JWT/OAuth/OIDC claims nor tenancy/roles. */
  custom: Readonly<Record<string, unknown>>;
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The current actor of an RFC 8693 `act` claim (an object whose `sub` names it), else undefined. */
function actorOf(act: unknown): string | undefined {
  if (typeof act !== 'object' || act === null) return undefined;
  const sub = (act as { sub?: unknown }).sub;
  return typeof sub === 'string' && sub !== '' ? sub : undefined;
}

export function principalFromClaims(claims: JWTPayload): Principal {
  const tenantIds = [...new Set([...strings(claims.tenant_id), ...strings(claims.tenant_ids)])];
  return {
    subject: String(claims.sub ?? ''),
    clientId: typeof claims.client_id === 'string' ? claims.client_id : undefined,
    actor: actorOf(claims.act),
    scopes: parseScopes(typeof claims.scope === 'string' ? claims.scope : strings(claims.scp)),
    tenantId: tenantIds[0],
    tenantIds,
    roles: strings(claims.roles),
    tokenId: claims.jti,
    issuer: String(claims.iss),
    audience: strings(claims.aud),
    expiresAt: Number(claims.exp),
    claims,
    custom: Object.fromEntries(Object.entries(claims).filter(([name]) => !KNOWN_CLAIMS.has(name))),
  };
}

/** Maps a `jose` verification failure to our code, naming the claim that failed. */
function tokenError(error: unknown): TokenValidationError {
  if (error instanceof TokenValidationError) return error;
  if (error instanceof errors.JWTExpired) {
    return new TokenValidationError('token_expired', 'The token has expired.', { claim: 'exp' });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') {
      return new TokenValidationError('invalid_issuer', 'The token comes from another issuer.', { claim: 'iss' });
    }
    if (error.claim === 'aud') {
      return new TokenValidationError('invalid_audience', 'The token is meant for another audience.', {
        claim: 'aud',
      });
    }
    const reason =
      error.claim === 'nbf' ? 'The token is not valid yet.' : `The token's ${error.claim} claim is invalid.`;
    return new TokenValidationError('invalid_token', reason, { claim: error.claim });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenValidationError('invalid_signature', 'The token signature does not verify.');
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenValidationError(
      'invalid_signature',
      'The token was signed with a key the issuer does not publish.',
      {
        claim: 'kid',
      },
    );
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new TokenValidationError('invalid_token', 'The token is signed with an algorithm that is not allowed.', {
      claim: 'alg',
    });
  }
  return new TokenValidationError('invalid_token', 'The token is malformed.');
}

export class TokenValidator {
  readonly jwks: JwksCache;
  readonly revocation: RevocationChecker;
  readonly dpop: DpopProofVerifier;
  readonly #options: TokenValidatorOptions;
  readonly #algorithms: string[];
  /**
   * Tokens whose signature and claims were verified, by the whole token (never by `jti` alone: a forged
   * token may copy a `jti`), until `exp` (with the clock tolerance) but no longer than the JWKS cache
   * would keep a key the issuer removed. Revocation is still checked as the mode asks.
   */
  readonly #verified: LRUCache<string, { payload: JWTPayload; from: number; until: number }>;

  constructor(options: TokenValidatorOptions) {
    const fetcher = options.fetch ?? fetch;
    const now = options.now ?? Date.now;
    const timeoutMs = options.timeoutMs ?? 5000;
    this.#options = options;
    const asymmetric = new Set<string>(DEFAULT_TOKEN_ALGORITHMS);
    this.#algorithms = (options.algorithms ?? DEFAULT_TOKEN_ALGORITHMS).filter((alg) => asymmetric.has(alg));
    this.#verified = new LRUCache({ max: options.verifiedTokenCacheSize ?? 10_000 });
    this.dpop = new DpopProofVerifier({
      ...options.dpop,
      replay: options.dpop?.replay ?? new MemoryDpopReplayStore({ now }),
      now,
    });
    this.jwks = new JwksCache({
      issuer: options.issuer,
      fetch: fetcher,
      ttlMs: options.jwksCacheTtlMs ?? 300_000,
      cooldownMs: options.jwksCooldownMs ?? 30_000,
      timeoutMs,
      now,
    });
    this.revocation = new RevocationChecker(
      {
        mode: options.revocation?.mode ?? 'sensitive-only',
        intervalMs: options.revocation?.intervalMs ?? 300_000,
        ...(options.revocation?.auth ? { auth: options.revocation.auth } : {}),
        fetch: fetcher,
        timeoutMs,
        now,
      },
      this.jwks,
    );
  }

  /**
   * The principal of a valid token; `sensitive` operations also check revocation in the default mode.
   * A DPoP-bound token (`cnf.jkt`) needs the `DPoP` scheme and a valid proof on every request (a cached
   * verification of the token never skips the proof); an unbound token is refused with that scheme.
   * Throws `TokenValidationError`.
   */
  async validate(token: string | undefined, options: TokenPresentation = {}): Promise<Principal> {
    if (!token) throw new TokenValidationError('missing_token', 'A bearer token is required.');
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new TokenValidationError('invalid_token', 'The token is malformed.');
    }
    const payload = await this.#verify(token);
    const jkt = boundKeyThumbprint(payload);
    if (jkt !== undefined) {
      if (options.scheme !== 'DPoP') {
        throw new TokenValidationError(
          'invalid_token',
          'The token is DPoP-bound: present it with Authorization: DPoP and a proof.',
          { scheme: 'DPoP', claim: 'cnf' },
        );
      }
      await this.dpop.verify(options.dpop ?? { proof: undefined, method: '', url: '' }, token, jkt);
    } else if (options.scheme === 'DPoP') {
      throw new TokenValidationError('invalid_token', 'The token is not DPoP-bound: present it as Bearer.', {
        scheme: 'DPoP',
        claim: 'cnf',
      });
    }
    if (this.revocation.needsCheck(options.sensitive === true)) {
      await this.revocation.assertActive(token, payload.jti);
    }
    return principalFromClaims(payload);
  }

  /** Signature, type, algorithm, issuer, audience and times: once per token while it stays valid. */
  async #verify(token: string): Promise<JWTPayload> {
    const now = (this.#options.now ?? Date.now)();
    const known = this.#verified.get(token);
    if (known && now >= known.from && now < known.until) return known.payload;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks.getKey, {
        issuer: this.#options.issuer,
        audience: [...(typeof this.#options.audience === 'string' ? [this.#options.audience] : this.#options.audience)],
        algorithms: this.#algorithms,
        clockTolerance: this.#options.clockToleranceSeconds ?? 30,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'sub'],
        ...(this.#options.now ? { currentDate: new Date(this.#options.now()) } : {}),
      }));
    } catch (error) {
      this.#verified.delete(token);
      throw tokenError(error);
    }
    const toleranceMs = (this.#options.clockToleranceSeconds ?? 30) * 1000;
    const expiresAt = (payload.exp ?? 0) * 1000 + toleranceMs;
    const keyTtl = this.#options.jwksCacheTtlMs ?? 300_000;
    this.#verified.set(token, {
      payload,
      from: payload.nbf === undefined ? 0 : payload.nbf * 1000 - toleranceMs,
      until: Math.min(expiresAt, now + keyTtl),
    });
    return payload;
  }
}
