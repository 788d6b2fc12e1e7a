/**
 * Logout tokens (OpenID Connect Back-Channel Logout 1.0, section 2.6): the JWT an OP posts to a relying
 * party's `backchannel_logout_uri` when a user signs out there. Validated like an ID token (signature by the
 * issuer's JWKS, `iss`, `aud` = our client id, `iat`), plus the rules that keep an ID token or any other JWT
 * from passing as one: the back-channel logout event, a `jti`, `sub` or `sid`, and never a `nonce`.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const ASYMMETRIC = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

export class LogoutTokenError extends Error {
  override readonly name = 'LogoutTokenError';
}

export interface LogoutTokenOptions {
  /** The issuer's keys (e.g. `JwksCache.getKey`). */
  getKey: JWTVerifyGetKey;
  issuer: string;
  /** Our client id at the issuer. */
  audience: string;
  clockToleranceSeconds?: number;
  /** A token issued longer ago than this is refused (default 5 minutes). */
  maxAgeSeconds?: number;
  now?: () => Date;
}

export interface LogoutToken {
  /** The subject signed out (absent when the OP names only the session). */
  sub?: string;
  /** The OP's session id for our client (`backchannel_logout_session_required`). */
  sid?: string;
  jti: string;
  iat: number;
}

const refuse = (reason: string) => new LogoutTokenError(`The logout token is not valid: ${reason}.`);

export async function verifyLogoutToken(token: string, options: LogoutTokenOptions): Promise<LogoutToken> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, options.getKey, {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: ASYMMETRIC,
      requiredClaims: ['iat', 'jti'],
      clockTolerance: options.clockToleranceSeconds ?? 30,
      maxTokenAge: options.maxAgeSeconds ?? 300,
      ...(options.now ? { currentDate: options.now() } : {}),
    }));
  } catch (error) {
    if (error instanceof errors.JOSEError) throw refuse(error.message.replace(/\.$/, ''));
    throw error;
  }
  // RFC 8725 explicit typing: the OP marks logout tokens `logout+jwt` (an untyped one is tolerated by the spec).
  const { typ } = decodeProtectedHeader(token);
  if (typ !== undefined && typ.toLowerCase() !== 'logout+jwt') throw refuse(`typ "${typ}" is not logout+jwt`);
  const events = payload.events as Record<string, unknown> | undefined;
  const event = events?.[BACKCHANNEL_LOGOUT_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw refuse('it carries no back-channel logout event');
  }
  if ('nonce' in payload) throw refuse('it carries a nonce');
  const sub = typeof payload.sub === 'string' && payload.sub.length > 0 ? payload.sub : undefined;
  const sid = typeof payload.sid === 'string' && payload.sid.length > 0 ? payload.sid : undefined;
  if (sub === undefined && sid === undefined) throw refuse('it names neither sub nor sid');
  return {
    ...(sub === undefined ? {} : { sub }),
    ...(sid === undefined ? {} : { sid }),
    jti: String(payload.jti),
    iat: Number(payload.iat),
  };
}
