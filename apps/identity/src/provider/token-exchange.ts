/**
 * Token exchange (RFC 8693; identity.md "Token exchange"): a confidential client allowed the grant presents
 * a user's access token issued here (`subject_token`) and gets a narrower JWT access token for one resource
 * server, for the same user (`sub`), naming itself as the actor (`act: {sub: <client id>}`, the subject
 * token's own `act` nested inside). The steps, each refusing with the RFC's error: the client may act;
 * the request is one this server answers; the subject token is active and a user's; the target is a known
 * resource server; the scopes are a subset of the subject token's, the client's and the target's; the new
 * token lives no longer than the subject token.
 */
import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { JWTPayload } from 'jose';
import type { Database } from '@cryptoutil/infra';
import { parseScopes } from '@cryptoutil/jose-authority';
import { findUserById } from '../data/user-repository.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_EXCHANGE_PARAMETERS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'audience',
  'resource',
  'scope',
] as const;

/** RFC 8693 §4.1: the acting party, with any earlier actor nested. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
}

export interface TokenExchangeOptions {
  db: Database;
  /** The resource servers tokens may be issued for, by URI (config `resources`). */
  resources: ReadonlyMap<string, { uri: string; scopes: readonly string[] }>;
  /** The claims of an access token issued here that is active now (signature, expiry, not revoked, grant alive). */
  activeAccessToken: (token: string) => Promise<JWTPayload | undefined>;
  /** What the provider needs to issue a JWT for `uri` to `client` (the same as for its other grants). */
  resourceServerInfo: (uri: string, client: Client) => ResourceServer;
  now?: () => number;
}

type ExchangeParams = Partial<Record<(typeof TOKEN_EXCHANGE_PARAMETERS)[number], string | string[]>>;

/** Exchanged tokens and their `act` claim, read by `extraTokenClaims` when the token is signed. */
const actors = new WeakMap<object, ActorClaim>();

/** The `act` claim of a token issued by token exchange, for `extraTokenClaims`. */
export function delegationClaims(token: object): { act?: ActorClaim } {
  const act = actors.get(token);
  return act ? { act } : {};
}

function single(params: ExchangeParams, name: keyof ExchangeParams): string | undefined {
  const value = params[name];
  if (Array.isArray(value)) {
    if (name === 'resource') throw new errors.InvalidTarget('only one resource may be requested');
    throw new errors.InvalidRequest(`${name} must be given once`);
  }
  return value === '' ? undefined : value;
}

/** Only a confidential client acts for users: it proved who it is. */
function assertConfidential(client: Client): void {
  if (client.clientAuthMethod === 'none') {
    throw new errors.UnauthorizedClient('token exchange is for confidential clients');
  }
}

/** What this server exchanges: an access token for an access token; the authenticated client is the actor. */
function subjectTokenOf(params: ExchangeParams): string {
  const subjectToken = single(params, 'subject_token');
  if (!subjectToken) throw new errors.InvalidRequest('missing required parameter subject_token');
  if (single(params, 'subject_token_type') !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  const requested = single(params, 'requested_token_type');
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (single(params, 'actor_token') !== undefined || single(params, 'actor_token_type') !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
  }
  return subjectToken;
}

/** An active access token issued here to a user who may still sign in. */
async function verifySubject(options: TokenExchangeOptions, subjectToken: string) {
  const claims = await options.activeAccessToken(subjectToken);
  if (!claims) throw new errors.InvalidGrant('subject_token is invalid, expired or revoked');
  const { sub, gid, exp } = claims;
  if (typeof sub !== 'string' || typeof gid !== 'string' || typeof exp !== 'number' || sub === claims.client_id) {
    throw new errors.InvalidGrant('subject_token does not represent a user');
  }
  const user = await findUserById(options.db, sub);
  if (!user?.enabled) throw new errors.InvalidGrant('subject_token does not represent a user');
  return { sub, grantId: gid, exp, scopes: parseScopes(claims.scope as string | undefined), act: claims.act };
}

/** The one resource server the new token is for: `resource` (a URI) or `audience` (its name here is its URI). */
function targetOf(options: TokenExchangeOptions, params: ExchangeParams) {
  const resource = single(params, 'resource');
  const audience = single(params, 'audience');
  const wanted = resource ?? audience;
  if (wanted === undefined) throw new errors.InvalidTarget('audience or resource is required');
  if (resource && audience && resource !== audience) {
    throw new errors.InvalidTarget('audience and resource name different resource servers');
  }
  const target = options.resources.get(wanted);
  if (!target) throw new errors.InvalidTarget('the requested audience is not a known resource server');
  return target;
}

/** Narrower only: what is asked (else everything possible) within the subject's, the client's and the target's. */
function narrowedScopes(requested: string | undefined, allowed: ReadonlySet<string>[]): string[] {
  const possible = (scope: string) => allowed.every((set) => set.has(scope));
  if (requested === undefined) {
    const all = [...(allowed[0] ?? [])].filter(possible);
    if (all.length === 0) throw new errors.InvalidScope('the subject token grants no scope for this audience', '');
    return all;
  }
  const asked = parseScopes(requested);
  const excess = asked.filter((scope) => !possible(scope));
  if (asked.length === 0 || excess.length > 0) {
    throw new errors.InvalidScope(
      'requested scope exceeds what the subject token and the client allow',
      excess.join(' '),
    );
  }
  return asked;
}

function nestedActor(client: string, earlier: unknown): ActorClaim {
  const valid = typeof earlier === 'object' && earlier !== null && typeof (earlier as ActorClaim).sub === 'string';
  return valid ? { sub: client, act: earlier as ActorClaim } : { sub: client };
}

/** The grant handler for `registerGrantType(TOKEN_EXCHANGE_GRANT, …)`. */
export function tokenExchangeGrant(options: TokenExchangeOptions) {
  const now = options.now ?? Date.now;
  return async (ctx: KoaContextWithOIDC): Promise<void> => {
    const { client, provider } = ctx.oidc;
    if (!client) throw new errors.InvalidClient('client authentication failed');
    const params = ctx.oidc.params as ExchangeParams;
    assertConfidential(client);
    const subjectToken = subjectTokenOf(params);
    const subject = await verifySubject(options, subjectToken);
    const target = targetOf(options, params);
    const info = options.resourceServerInfo(target.uri, client);
    const scopes = narrowedScopes(single(params, 'scope'), [
      new Set(subject.scopes),
      new Set(parseScopes(client.scope)),
      new Set(target.scopes),
    ]);
    const remaining = subject.exp - Math.floor(now() / 1000);
    if (remaining <= 0) throw new errors.InvalidGrant('subject_token is invalid, expired or revoked');
    const at = new provider.AccessToken({
      accountId: subject.sub,
      client,
      grantId: subject.grantId,
      gty: TOKEN_EXCHANGE_GRANT,
      scope: scopes.join(' '),
      expiresIn: Math.min(info.accessTokenTTL ?? remaining, remaining),
      resourceServer: new provider.ResourceServer(target.uri, info),
    });
    actors.set(at, nestedActor(client.clientId, subject.act));
    ctx.oidc.entity('AccessToken', at);
    const accessToken = await at.save();
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope: at.scope,
    };
  };
}

/** RFC 6749 §5.2: a client not allowed the grant is `unauthorized_client` (oidc-provider says invalid_request). */
export async function unauthorizedClientForExchange(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  await next();
  const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
  const grantType = (ctx.oidc?.params as { grant_type?: unknown } | undefined)?.grant_type;
  if (
    grantType === TOKEN_EXCHANGE_GRANT &&
    ctx.status === 400 &&
    body?.error === 'invalid_request' &&
    body.error_description === 'requested grant type is not allowed for this client'
  ) {
    body.error = 'unauthorized_client';
    body.error_description = 'this client is not allowed token exchange';
  }
}
