/**
 * The offline conformance mirror's relying party (identity.md "Offline conformance mirror"): a real Identity
 * on the test database, two confidential clients registered through the admin API the way an operator would
 * (one `client_secret_basic`, one `client_secret_post`, redirect URIs with and without a query, a
 * post-logout URI), and the steps every OpenID Foundation module repeats: build an authorization request,
 * sign in through the real form when the OP asks, and stop at the client's redirect.
 *
 * Deliberate difference from the suite: PKCE S256 is sent in every request, because our contract (OAuth
 * 2.1) requires it for every client; the suite's Basic plan runs without it. A request without it is
 * refused (oauth-flows.test.ts).
 */
import { expect } from '@jest/globals';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import type { DatabaseTestContext } from '@cryptoutil/infra/testing';
import {
  Browser,
  SECRETS_WITH_ADMIN_TOKEN,
  ADMIN_TOKEN,
  formAction,
  formValue,
  startTestIdentity,
} from '../harness.js';
import type { TestIdentity } from '../harness.js';

export const REDIRECT = 'https://rp.example.test/callback';
export const REDIRECT_WITH_QUERY = 'https://rp.example.test/callback-query?foo=bar';
export const POST_LOGOUT = 'https://rp.example.test/logged-out';
export const USER = { username: 'demo-user', password: 'demo-user-password' };

export interface RegisteredClient {
  clientId: string;
  secret: string;
  config: client.Configuration;
}

export interface ConformanceOp {
  t: TestIdentity;
  issuer: string;
  /** `client_secret_basic`, the plan's default variant. */
  basic: RegisteredClient;
  /** `client_secret_post`, the plan's second variant. */
  post: RegisteredClient;
  close(): Promise<void>;
}

async function register(
  t: TestIdentity,
  clientId: string,
  method: 'client_secret_basic' | 'client_secret_post',
): Promise<RegisteredClient> {
  const res = await t.fetch(`${t.identity.adminUrl}/admin/v1/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: clientId,
      client_name: `Conformance RP (${method})`,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT, REDIRECT_WITH_QUERY],
      post_logout_redirect_uris: [POST_LOGOUT],
      token_endpoint_auth_method: method,
      scope: 'openid profile email offline_access',
      trusted: true,
    }),
  });
  expect(res.status).toBe(201);
  const secret = String(((await res.json()) as { client_secret: string }).client_secret);
  const auth = method === 'client_secret_basic' ? client.ClientSecretBasic(secret) : client.ClientSecretPost(secret);
  return { clientId, secret, config: await t.discover(clientId, auth) };
}

export async function startConformanceOp(db: DatabaseTestContext): Promise<ConformanceOp> {
  const t = await startTestIdentity(db, { secrets: SECRETS_WITH_ADMIN_TOKEN });
  return {
    t,
    issuer: t.identity.issuer,
    basic: await register(t, 'conformance-basic', 'client_secret_basic'),
    post: await register(t, 'conformance-post', 'client_secret_post'),
    async close() {
      await t.identity.close();
      await t.agent.close();
    },
  };
}

export interface AuthorizationRequest {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

/** An authorization request of the code flow with state, nonce and PKCE; `extra` adds or overrides parameters. */
export async function authorizationRequest(
  rp: RegisteredClient,
  extra: Record<string, string> = {},
): Promise<AuthorizationRequest> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(rp.config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

export interface Arrival {
  /** Where the browser ended: the client's redirect, or the OP page it stopped at. */
  url: URL;
  /** True when the OP showed its sign-in form on the way. */
  askedToSignIn: boolean;
  response: Response;
}

/**
 * Follows an authorization request in `browser`; when the OP shows its sign-in form, signs in as `USER`
 * (unless `signIn` is false, then stops at the form). Ends at the client's redirect or at an OP page.
 */
export async function arrive(
  op: ConformanceOp,
  browser: InstanceType<typeof Browser>,
  url: URL | string,
  options: { signIn?: boolean; form?: Record<string, string> } = {},
): Promise<Arrival> {
  const first = await browser.follow(url.toString(), options.form ? { form: options.form } : {});
  if (!first.url.startsWith(op.issuer))
    return { url: new URL(first.url), askedToSignIn: false, response: first.response };
  const html = await first.response.clone().text();
  if (!html.includes('name="password"') || options.signIn === false) {
    return { url: new URL(first.url), askedToSignIn: html.includes('name="password"'), response: first.response };
  }
  const done = await browser.follow(new URL(formAction(html), op.issuer).toString(), {
    form: { csrf: formValue(html, 'csrf'), ...USER },
  });
  return { url: new URL(done.url), askedToSignIn: true, response: done.response };
}

export function newBrowser(op: ConformanceOp): InstanceType<typeof Browser> {
  return new Browser(op.t.fetch, op.issuer);
}

/** Signs in through the form and redeems the code with the client's authentication. */
export async function signInAndRedeem(
  op: ConformanceOp,
  rp: RegisteredClient,
  extra: Record<string, string> = {},
  browser = newBrowser(op),
) {
  const request = await authorizationRequest(rp, extra);
  const arrival = await arrive(op, browser, request.url);
  const tokens = await client.authorizationCodeGrant(rp.config, arrival.url, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
  });
  return { request, arrival, tokens, browser };
}

/** The authorization response's parameters (query of the redirect). */
export function responseParams(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams);
}

/**
 * Redeems a code with oauth4webapi and returns the OP's raw answer (status and JSON), so a module can see
 * the OP's own error and send the redirect URI exactly as registered (query included).
 */
export async function rawCodeRedemption(
  op: ConformanceOp,
  rp: RegisteredClient,
  callback: URL,
  verifier: string,
  redirectUri = REDIRECT,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const options = { [oauth.customFetch]: op.t.fetch };
  const as = await oauth.processDiscoveryResponse(
    new URL(op.issuer),
    await oauth.discoveryRequest(new URL(op.issuer), options),
  );
  const oauthClient: oauth.Client = { client_id: rp.clientId };
  const params = oauth.validateAuthResponse(as, oauthClient, callback, oauth.skipStateCheck);
  const auth = rp === op.post ? oauth.ClientSecretPost(rp.secret) : oauth.ClientSecretBasic(rp.secret);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    oauthClient,
    auth,
    params,
    redirectUri,
    verifier,
    options,
  );
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
