/**
 * The oidc-provider instance (identity.md "Protocol"): persistent adapter, our accounts and hashed
 * client secrets, PKCE S256 required, refresh-token rotation with reuse detection, JWT access tokens
 * (RFC 9068) for the configured resource servers, with `tenant_id`, `roles` and the grant id; DPoP
 * (RFC 9449) binds them (`cnf.jkt`) for clients that send proofs, which public clients must.
 */
import Provider, {
  errors,
  type Adapter,
  type AdapterFactory,
  type Configuration,
  type CanBePromise,
  type Client,
  type ResourceServer,
  type KoaContextWithOIDC,
  type TokenEndpointGrantContext,
} from 'oidc-provider';
import {
  AppError,
  NotFoundError,
  PROBLEM_CONTENT_TYPE,
  isDatabaseUnavailable,
  problemBody,
  type Database,
  type RateLimiter,
} from '@cryptoutil/infra';
import type { JWK } from '@cryptoutil/jose-authority';
import type { JWTPayload } from 'jose';
import type { IdentityConfig } from '../config.js';
import { findClient } from '../data/client-repository.js';
import { findUserById } from '../data/user-repository.js';
import { parseScopes } from '@cryptoutil/jose-authority';
import { OIDC_SCOPES } from '../domain/scopes.js';
import { findAccount } from './account.js';
import { providerClientMetadata } from './client-metadata.js';
import { tlsClientAuth } from './tls-client-auth.js';
import { DPOP_SIGNING_ALGORITHMS, dpopFeature } from './dpop.js';
import { verifyHashedClientSecrets } from './client-secrets.js';
import { countTokensIssued } from '../domain/identity-metrics.js';
import { renderErrorPage, renderLogoutPage, renderSignedOutPage } from '../interactions/views.js';
import { deviceFlowExtras, deviceFlowFeature } from './device-flow.js';
import { atRestKey } from '../domain/signing-keys.js';
import { refreshGrace, rotatesRefreshToken } from './refresh-grace.js';
import {
  TOKEN_EXCHANGE_GRANT,
  TOKEN_EXCHANGE_PARAMETERS,
  delegationClaims,
  tokenExchangeGrant,
  unauthorizedClientForExchange,
} from './token-exchange.js';

/** Client metadata: this client's access tokens for resource servers live this many seconds. */
export const ACCESS_TOKEN_TTL = 'access_token_ttl';

function accessTokenTtl(client: object | undefined, fallback: number): number {
  // The provider keeps extra client metadata as properties under their own names (`metadata()` would
  // rebuild the whole object on every call).
  const ttl = (client as Record<string, unknown> | undefined)?.[ACCESS_TOKEN_TTL];
  return typeof ttl === 'number' ? ttl : fallback;
}

/** The provider's request options without its own dispatcher (ours carries the project CA). */
function withoutDispatcher(init: RequestInit): RequestInit {
  const { dispatcher: _dispatcher, ...rest } = init as RequestInit & { dispatcher?: unknown };
  return rest;
}

/** The provider's `fetch` setting: ours, when given, in place of its dispatcher. */
function outgoing(fetcher: typeof fetch | undefined): Pick<Configuration, 'fetch'> {
  if (!fetcher) return {};
  return { fetch: (url: string | URL | Request, init?: RequestInit) => fetcher(url, withoutDispatcher(init ?? {})) };
}

export interface ProviderOptions {
  config: IdentityConfig;
  issuer: string;
  db: Database;
  adapter: AdapterFactory;
  signingKeys: JWK[];
  /** Outgoing calls of the provider (back-channel logout): trust this CA besides the public ones. */
  outgoingFetch?: typeof fetch;
  /** Device-flow polls, one per interval per device code (`slow_down` beyond). */
  devicePolls: RateLimiter;
  /** The claims of an access token issued here that is active now (token exchange's subject tokens). */
  activeAccessToken: (token: string) => Promise<JWTPayload | undefined>;
}

/** Clients come from our table: their metadata, with the secret hash as `client_secret`. */
function clientAdapter(db: Database): Adapter {
  const readOnly = async () => undefined;
  return {
    async find(id: string) {
      const client = await findClient(db, id);
      return client ? providerClientMetadata(client) : undefined;
    },
    upsert: readOnly,
    findByUid: readOnly,
    findByUserCode: readOnly,
    destroy: readOnly,
    consume: readOnly,
    revokeByGrantId: readOnly,
  };
}

async function tokenClaims(db: Database, token: { accountId?: string; clientId?: string; grantId?: string }) {
  const claims: Record<string, unknown> = {};
  if (token.grantId) claims.gid = token.grantId;
  if (token.accountId) {
    const user = await findUserById(db, token.accountId);
    if (user?.tenantId) claims.tenant_id = user.tenantId;
    if (user && user.roles.length > 0) claims.roles = user.roles;
  } else if (token.clientId) {
    const client = await findClient(db, token.clientId);
    if (client?.tenantId) claims.tenant_id = client.tenantId;
  }
  return claims;
}

export function createProvider(options: ProviderOptions): Provider {
  const { config, db } = options;
  const resources = new Map(config.resources.map((resource) => [resource.uri, resource]));
  const [defaultResource] = config.resources;
  const tokens = config.tokens;
  const resourceServerInfo = (indicator: string, client: Client): ResourceServer => {
    const resource = resources.get(indicator);
    if (!resource) throw new errors.InvalidTarget();
    const allowed = new Set(parseScopes(client.scope));
    const scopes = resource.scopes.filter((scope) => allowed.size === 0 || allowed.has(scope));
    return {
      scope: scopes.join(' '),
      audience: resource.uri,
      accessTokenTTL: accessTokenTtl(client, tokens.access_token_ttl_seconds),
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256' } },
    };
  };
  const configuration: Configuration = {
    adapter: (name: string) => (name === 'Client' ? clientAdapter(db) : options.adapter(name)),
    findAccount: findAccount(db),
    jwks: { keys: options.signingKeys as NonNullable<Configuration['jwks']>['keys'] },
    // OIDC Core 3.1.2.1: the authorization endpoint MUST accept POST as well as GET. The provider then needs
    // its session cookie SameSite=None (still Secure and HttpOnly) so a form POST from the client's site
    // carries it; a cross-site top-level GET carried it under Lax already, so this opens no new way in.
    enableHttpPostMethods: true,
    cookies: { keys: config.secrets.cookie_keys, long: { sameSite: 'none' } },
    scopes: [...new Set([...OIDC_SCOPES, ...config.resources.flatMap((resource) => resource.scopes)])],
    claims: {
      // `amr`: how the user signed in (RFC 8176 values: `pwd`, then `otp` after a TOTP code).
      openid: ['sub', 'amr'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    extraClientMetadata: {
      properties: [ACCESS_TOKEN_TTL],
      validator: (_ctx, key, value) => {
        if (key !== ACCESS_TOKEN_TTL || value === undefined) return;
        if (!Number.isInteger(value) || (value as number) < 5 || (value as number) > 86_400) {
          throw new errors.InvalidClientMetadata(`${ACCESS_TOKEN_TTL} must be an integer from 5 to 86400`);
        }
      },
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'none'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    enabledJWA: { dPoPSigningAlgValues: [...DPOP_SIGNING_ALGORITHMS] },
    rotateRefreshToken: rotatesRefreshToken,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: (_ctx, _token, client) => accessTokenTtl(client, tokens.access_token_ttl_seconds),
      ClientCredentials: (_ctx, _token, client) => accessTokenTtl(client, tokens.access_token_ttl_seconds),
      IdToken: tokens.id_token_ttl_seconds,
      RefreshToken: tokens.refresh_token_ttl_seconds,
      AuthorizationCode: tokens.authorization_code_ttl_seconds,
      Session: tokens.session_ttl_seconds,
      DeviceCode: config.device_flow.user_code_ttl_seconds,
      Interaction: 3600,
      Grant: 30 * 24 * 3600,
    },
    extraTokenClaims: async (_ctx, token) => ({
      ...(await tokenClaims(db, token as { accountId?: string; clientId?: string; grantId?: string })),
      ...delegationClaims(token),
    }),
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const grantId =
        ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client?.clientId ?? '');
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      return undefined;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      mTLS: { enabled: true, tlsClientAuth: true, ...tlsClientAuth },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      deviceFlow: deviceFlowFeature(),
      // Sender-constrained tokens (RFC 9449), with server nonces: see dpop.ts.
      dPoP: dpopFeature(config),
      // Logout pages in the shared look (no inline style or script; the provider's form posts the choice).
      // OIDC Back-Channel Logout 1.0: a logout posts a signed logout token to each client of the session
      // that registered a back-channel URI (the KMS ends its console sessions with it).
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = renderLogoutPage(form);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = renderSignedOutPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        // The resource server is implied for machine clients and for requests that ask for its scopes;
        // a plain OpenID request keeps an opaque access token for userinfo.
        defaultResource: (ctx) => {
          if (!defaultResource) return undefined;
          const params = ctx.oidc.params as { scope?: string; grant_type?: string } | undefined;
          const wanted = new Set(parseScopes(params?.scope));
          const forResource = defaultResource.scopes.some((scope) => wanted.has(scope));
          return forResource || params?.grant_type === 'client_credentials' ? defaultResource.uri : undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo: async (_ctx, indicator, client) => resourceServerInfo(indicator, client),
      },
    },
    // The provider's own outgoing requests (logout tokens) go to URIs an administrator registered (there is no
    // dynamic registration), so they may reach the project's internal services, trusting the project CA.
    ...outgoing(options.outgoingFetch),
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = renderErrorPage(
        String(out.error),
        typeof out.error_description === 'string' ? out.error_description : undefined,
      );
    },
  };
  const grace = {
    db,
    graceSeconds: tokens.refresh_reuse_grace_seconds,
    key: atRestKey(config.secrets.signing_key_encryption, 'refresh-successors'),
  };
  /**
   * oidc-provider registers its built-in grants from its constructor through `registerGrantType`: the
   * refresh_token grant is wrapped there with the reuse grace window (refresh-grace.ts).
   */
  class IdentityProvider extends Provider {
    override registerGrantType<Params extends object>(
      name: string,
      handler: (ctx: TokenEndpointGrantContext<Params>) => CanBePromise<void>,
      params?: string | readonly string[] | ReadonlySet<string>,
      dupes?: string | readonly string[] | ReadonlySet<string>,
    ): void {
      super.registerGrantType(name, name === 'refresh_token' ? refreshGrace(grace, handler) : handler, params, dupes);
    }
  }
  const provider = new IdentityProvider(options.issuer, configuration);
  verifyHashedClientSecrets(provider);
  deviceFlowExtras(provider, { intervalSeconds: config.device_flow.poll_interval_seconds, polls: options.devicePolls });
  // RFC 8693 token exchange (token-exchange.ts), for clients whose grant_types name it.
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    tokenExchangeGrant({ db, resources, activeAccessToken: options.activeAccessToken, resourceServerInfo }),
    TOKEN_EXCHANGE_PARAMETERS,
    ['resource'],
  );
  provider.use(unauthorizedClientForExchange);
  // A path or method the provider does not serve is a problem+json 404 like everywhere else (not Koa's text).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.type = PROBLEM_CONTENT_TYPE;
      ctx.body = JSON.stringify(problemBody(new NotFoundError(), { instance: ctx.path }));
    }
  });
  // The database being unreachable is not a server bug: 503 with Retry-After, OAuth's temporarily_unavailable.
  provider.on('server_error', (ctx: KoaContextWithOIDC, error: unknown) => {
    // A typed client error from below (e.g. text the database refuses) is the request's fault: 400.
    if (error instanceof AppError && error.status < 500) {
      ctx.status = 400;
      if (ctx.type !== 'text/html') ctx.body = { error: 'invalid_request', error_description: error.detail };
      return;
    }
    if (!isDatabaseUnavailable(error)) return;
    ctx.status = 503;
    ctx.set('Retry-After', '1');
    if (ctx.type !== 'text/html') {
      ctx.body = {
        error: 'temporarily_unavailable',
        error_description: 'The database cannot be reached; retry shortly.',
      };
    }
  });
  provider.on('grant.success', (ctx: { oidc?: { params?: { grant_type?: unknown } } }) => {
    countTokensIssued(String(ctx.oidc?.params?.grant_type ?? 'unknown'));
  });
  return provider;
}
