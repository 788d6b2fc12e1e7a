/**
 * `demo identity`: discovery, JWKS, client credentials, introspection, authorization code + PKCE through
 * the real login form (as `demo-user`), refresh-token rotation, reuse detection and revocation.
 */
import { readFile } from 'node:fs/promises';
import * as client from 'openid-client';
import type { Agent } from 'undici';
import { FormBrowser, formAction, formValue } from '@cryptoutil/infra';
import { call, fetchVia } from './http.js';
import { KMS_SERVICE_SECRET } from './services.js';
import { check, type Step } from './steps.js';

/** The demo SPA's registered redirect (deployments/identity/config/demo-seed.yml). */
const SPA_REDIRECT = 'https://127.0.0.1:8082/demo/rp/callback';

export interface IdentityClients {
  service: () => Promise<client.Configuration>;
}

/** The `kms-service` client (client_secret_basic with the demo secret), discovered through the dispatcher. */
export function serviceClient(dispatcher: Agent, issuer: string): () => Promise<client.Configuration> {
  let configuration: Promise<client.Configuration> | undefined;
  return () => {
    configuration ??= (async () => {
      const secret = (await readFile(KMS_SERVICE_SECRET, 'utf8')).trim();
      return client.discovery(new URL(issuer), 'kms-service', undefined, client.ClientSecretBasic(secret), {
        [client.customFetch]: fetchVia(dispatcher) as client.CustomFetch,
      });
    })();
    return configuration;
  };
}

export function identitySteps(dispatcher: Agent, issuer: string): Step[] {
  const service = serviceClient(dispatcher, issuer);
  const state: { serviceToken?: string; refresh?: string; rotated?: string } = {};
  const step = (name: string, run: Step['run']): Step => ({ phase: 'identity', name, run });
  const spa = () =>
    client.discovery(new URL(issuer), 'demo-spa', undefined, client.None(), {
      [client.customFetch]: fetchVia(dispatcher) as client.CustomFetch,
    });

  return [
    step('discovery', async () => {
      const res = await call(dispatcher, 'GET', `${issuer}/.well-known/openid-configuration`);
      check(res.status === 200, `discovery answered ${res.status}`);
      const document = res.json<{
        issuer: string;
        token_endpoint?: string;
        code_challenge_methods_supported?: string[];
      }>();
      check(document.issuer === issuer, `issuer ${document.issuer} is not ${issuer}`);
      check(document.token_endpoint, 'no token endpoint');
      check(document.code_challenge_methods_supported?.includes('S256'), 'PKCE S256 not offered');
      return document.token_endpoint;
    }),
    step('JWKS', async () => {
      const jwksUri = (await service()).serverMetadata().jwks_uri;
      check(jwksUri, 'no jwks_uri');
      const res = await call(dispatcher, 'GET', jwksUri);
      const keys = res.json<{ keys: Record<string, unknown>[] }>().keys;
      check(res.status === 200 && keys.length > 0, 'the JWKS has no keys');
      check(
        keys.every((key) => key.d === undefined),
        'the JWKS leaks a private key',
      );
      return `${keys.length} public key(s): ${keys.map((key) => key.alg).join(', ')}`;
    }),
    step('client credentials (kms-service)', async () => {
      const tokens = await client.clientCredentialsGrant(await service(), { scope: 'kms:read' });
      check(tokens.access_token.split('.').length === 3, 'the access token is not a JWT');
      state.serviceToken = tokens.access_token;
      return `access token, expires in ${tokens.expires_in} s`;
    }),
    step('introspect', async () => {
      const answer = await client.tokenIntrospection(await service(), state.serviceToken ?? '');
      check(answer.active && answer.client_id === 'kms-service', 'introspection does not find the token active');
      return `active, scope ${answer.scope}`;
    }),
    step('authorization code + PKCE through the login form (demo-user)', async () => {
      const config = await spa();
      const verifier = client.randomPKCECodeVerifier();
      const stateValue = client.randomState();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: SPA_REDIRECT,
        scope: 'openid profile offline_access kms:encrypt',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: stateValue,
      });
      const browser = new FormBrowser(fetchVia(dispatcher), issuer);
      const page = await browser.follow(url.toString());
      const html = await page.response.text();
      check(html.includes('Sign in'), 'the authorization request did not show the login form');
      const done = await browser.follow(new URL(formAction(html), issuer).toString(), {
        form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
      });
      check(done.url.startsWith(SPA_REDIRECT), `the login did not come back to the client (${done.url})`);
      const tokens = await client.authorizationCodeGrant(config, new URL(done.url), {
        pkceCodeVerifier: verifier,
        expectedState: stateValue,
      });
      check(tokens.claims()?.preferred_username === 'demo-user', 'the ID token is not for demo-user');
      check(tokens.refresh_token, 'no refresh token');
      state.refresh = tokens.refresh_token;
      return 'ID, access and refresh tokens for demo-user';
    }),
    step('refresh (rotation)', async () => {
      const tokens = await client.refreshTokenGrant(await spa(), state.refresh ?? '');
      check(tokens.refresh_token && tokens.refresh_token !== state.refresh, 'the refresh token was not rotated');
      state.rotated = tokens.refresh_token;
      return 'a new refresh token replaced the old one';
    }),
    step('reuse detection', async () => {
      const config = await spa();
      const replay = await client.refreshTokenGrant(config, state.refresh ?? '').then(
        () => 'accepted',
        (error: { error?: string }) => error.error ?? 'error',
      );
      check(replay === 'invalid_grant', `replaying the old refresh token gave ${replay}`);
      const after = await client.refreshTokenGrant(config, state.rotated ?? '').then(
        () => 'accepted',
        (error: { error?: string }) => error.error ?? 'error',
      );
      check(after === 'invalid_grant', 'reuse did not revoke the rotated refresh token too');
      return 'replay refused, the whole grant revoked';
    }),
    step('revoke', async () => {
      await client.tokenRevocation(await service(), state.serviceToken ?? '');
      const answer = await client.tokenIntrospection(await service(), state.serviceToken ?? '');
      check(!answer.active, 'the revoked token is still active');
      return 'the access token is inactive';
    }),
  ];
}
