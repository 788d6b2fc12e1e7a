/**
 * Why a bearer token was refused (integration.md "Token validation"): a stable code, the HTTP status
 * and the OAuth error (RFC 6750) it maps to. Details never contain the token.
 */
export const TOKEN_ERROR_CODES = [
  'missing_token',
  'invalid_token',
  'token_expired',
  'token_revoked',
  'invalid_issuer',
  'invalid_audience',
  'invalid_signature',
  'insufficient_scope',
  /** A DPoP proof that is missing, malformed or does not match the request or token (RFC 9449 §7.1). */
  'invalid_dpop_proof',
  'identity_unavailable',
  /** No accepted credential at all (a resource server with several methods). */
  'authentication_required',
] as const;

export type TokenErrorCode = (typeof TOKEN_ERROR_CODES)[number];

export interface TokenErrorDetails {
  /** The scope the operation needs (403). */
  requiredScope?: string;
  /** The scopes the token has, after expansion (403, verbose only). */
  providedScopes?: string[];
  /** The claim that failed (verbose only). */
  claim?: string;
  /** The `WWW-Authenticate` scheme the error belongs to when it is not the one the request used. */
  scheme?: 'Bearer' | 'DPoP';
}

export class TokenValidationError extends Error {
  readonly status: 401 | 403 | 503;
  /** The RFC 6750 error for `WWW-Authenticate` (none for a missing token or an unavailable issuer). */
  readonly oauthError: 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | undefined;

  constructor(
    readonly code: TokenErrorCode,
    readonly description: string,
    readonly details: TokenErrorDetails = {},
    options: { cause?: unknown } = {},
  ) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenValidationError';
    this.status = code === 'insufficient_scope' ? 403 : code === 'identity_unavailable' ? 503 : 401;
    this.oauthError =
      code === 'insufficient_scope' || code === 'invalid_dpop_proof'
        ? code
        : code === 'missing_token' || code === 'identity_unavailable' || code === 'authentication_required'
          ? undefined
          : 'invalid_token';
  }
}
