/**
 * Console sign-in through Identity (identity.md "Back-channel logout", integration.md): the KMS is an
 * OpenID Connect relying party of its own client at Identity (authorization code + PKCE S256, state and
 * nonce kept in the database for a few minutes, single use). The session it creates carries Identity's
 * `sid`, and the access token it received decides what the session may do, exactly as that token would as
 * a bearer. A back-channel logout from Identity (a signed logout token) ends the sessions of that `sid`.
 */
import * as client from 'openid-client';
import { AppError, ValidationError, type Queryable } from '@cryptoutil/infra';
import type { LogoutToken } from '@cryptoutil/jose-authority';
import { insertPendingLogin, takePendingLogin } from '../data/identity-login-repository.js';
import type { RealmPrincipal } from './password-login.js';
import type { ActiveSession, SessionStore } from './session.js';

/** A pending sign-in lives this long: the person has to type a password at Identity in between. */
const PENDING_LOGIN_MS = 10 * 60 * 1000;
export const DEFAULT_RETURN_TO = '/ui/';

export interface IdentityLoginOptions {
  db: Queryable;
  sessions: SessionStore;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  /** This KMS's callback URL, registered at Identity. */
  redirectUri: string;
  /** Calls to Identity (its CA, tracing). */
  fetch: typeof fetch;
  /** The access token received decides the session's scopes and tenants, as it would as a bearer token. */
  principalOf(accessToken: string): Promise<{ subject: string; scopes: string[]; tenants: string[] }>;
  verifyLogoutToken(token: string): Promise<LogoutToken>;
  now?: () => Date;
}

/** Only a path of this KMS may be returned to (never another origin: no open redirect). */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || !/^\/(?![/\\])[\x21-\x7e]*$/.test(value) || value.length > 512) {
    return DEFAULT_RETURN_TO;
  }
  return value;
}

const callbackRefused = (detail: string) => new ValidationError(detail, { code: 'identity_login_failed' });

/** Identity could not be reached (discovery, token endpoint): 503 with Retry-After, never a 500. */
const identityUnavailable = (cause: unknown) =>
  new AppError(503, 'identity_unavailable', 'Service Unavailable', {
    detail: 'Identity cannot be reached to sign in; try again shortly.',
    headers: { 'Retry-After': '5' },
    cause,
  });

export class IdentityLogin {
  #configuration: Promise<client.Configuration> | undefined;

  constructor(private readonly options: IdentityLoginOptions) {}

  /** Identity's discovery, fetched once (again after a failure). */
  #config(): Promise<client.Configuration> {
    this.#configuration ??= client
      .discovery(
        new URL(this.options.issuer),
        this.options.clientId,
        undefined,
        client.ClientSecretBasic(this.options.clientSecret),
        { [client.customFetch]: this.options.fetch as client.CustomFetch },
      )
      .catch((error: unknown) => {
        this.#configuration = undefined;
        throw identityUnavailable(error);
      });
    return this.#configuration;
  }

  #now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** Starts a sign-in: remembers state, nonce and verifier, and returns Identity's authorization URL. */
  async start(returnTo: unknown): Promise<URL> {
    const config = await this.#config();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    await insertPendingLogin(this.options.db, {
      state,
      nonce,
      codeVerifier,
      returnTo: safeReturnTo(returnTo),
      expiresAt: new Date(this.#now().getTime() + PENDING_LOGIN_MS).toISOString(),
    });
    return client.buildAuthorizationUrl(config, {
      redirect_uri: this.options.redirectUri,
      scope: this.options.scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  /** Finishes a sign-in at the callback: redeems the code, checks the ID token, opens a session. */
  async finish(query: URLSearchParams): Promise<{ cookieValue: string; session: ActiveSession; returnTo: string }> {
    // The registered callback URL with the response's parameters (whatever host a proxy showed us).
    const callbackUrl = new URL(this.options.redirectUri);
    callbackUrl.search = query.toString();
    const state = query.get('state');
    const pending = state ? await takePendingLogin(this.options.db, state) : undefined;
    if (!pending || Date.parse(pending.expiresAt) <= this.#now().getTime()) {
      throw callbackRefused('This sign-in is unknown, already used or expired; start again.');
    }
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.authorizationCodeGrant(await this.#config(), callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      if (error instanceof client.AuthorizationResponseError || error instanceof client.ResponseBodyError) {
        throw callbackRefused(`Identity refused the sign-in: ${error.error}.`);
      }
      if (error instanceof AppError) throw error;
      // A response that is not OAuth's (ID token checks) is a refusal; no answer at all is Identity unavailable.
      if (error instanceof client.ClientError) throw callbackRefused('The answer from Identity did not check out.');
      throw identityUnavailable(error);
    }
    const claims = tokens.claims();
    const access = await this.options.principalOf(tokens.access_token);
    if (!claims || claims.sub !== access.subject) throw callbackRefused('The tokens do not name the same user.');
    const principal: RealmPrincipal = {
      subject: claims.sub,
      username: String(claims.preferred_username ?? claims.sub),
      scopes: access.scopes,
      tenants: access.tenants,
    };
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    const opened = await this.options.sessions.create(principal, sid === undefined ? {} : { identitySid: sid });
    return { ...opened, returnTo: pending.returnTo };
  }

  /** A back-channel logout: verifies the logout token and ends the sessions it names; returns how many. */
  async backchannelLogout(logoutToken: string): Promise<number> {
    const logout = await this.options.verifyLogoutToken(logoutToken);
    return this.options.sessions.destroyByIdentityLogout(logout);
  }
}
