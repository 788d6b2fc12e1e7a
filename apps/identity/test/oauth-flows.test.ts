import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  Browser,
  DEMO_WEB_SECRET,
  KMS_SERVICE_SECRET,
  SPA_REDIRECT,
  formAction,
  formValue,
  loginThroughForm,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

describeEachDatabase('Identity OAuth flows', (db) => {
  let t: TestIdentity;
  let service: client.Configuration;
  let spa: client.Configuration;
  beforeAll(async () => {
    t = await startTestIdentity(db);
    service = await t.discover('kms-service', client.ClientSecretBasic(KMS_SERVICE_SECRET));
    spa = await t.discover('demo-spa', client.None());
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('publishes discovery (OIDC and RFC 8414) and a JWKS with ES256 and RS256 keys, PKCE S256 only', async () => {
    const metadata = service.serverMetadata();
    expect(metadata.issuer).toBe(t.identity.issuer);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.grant_types_supported).not.toContain('implicit');
    const rfc8414 = await t.fetch(`${t.identity.issuer}/.well-known/oauth-authorization-server`);
    expect(rfc8414.status).toBe(200);
    expect(((await rfc8414.json()) as { issuer: string }).issuer).toBe(t.identity.issuer);
    const jwks = (await (await t.fetch(metadata.jwks_uri!)).json()) as { keys: { alg: string; d?: string }[] };
    expect(jwks.keys.map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const key of jwks.keys) expect(key.d).toBeUndefined();
  });

  it('issues a JWT access token for the KMS with client credentials (basic and post)', async () => {
    const token = await client.clientCredentialsGrant(service, { scope: 'kms:encrypt kms:decrypt' });
    expect(decodeProtectedHeader(token.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    expect(decodeJwt(token.access_token)).toMatchObject({
      iss: t.identity.issuer,
      aud: 'https://127.0.0.1:8081',
      client_id: 'kms-service',
      scope: 'kms:encrypt kms:decrypt',
    });
    const post = await t.discover('kms-service', client.ClientSecretPost(KMS_SERVICE_SECRET), {
      token_endpoint_auth_method: 'client_secret_post',
    });
    await expect(client.clientCredentialsGrant(post, { scope: 'kms:read' })).resolves.toMatchObject({
      token_type: 'bearer',
    });
    const wrong = await t.discover('kms-service', client.ClientSecretBasic('not-the-secret-not-the-secret-xx'));
    await expect(client.clientCredentialsGrant(wrong)).rejects.toMatchObject({
      status: 401,
      code: 'OAUTH_WWW_AUTHENTICATE_CHALLENGE',
    });
  });

  it('introspects JWT access tokens and makes a revoked one inactive', async () => {
    const { access_token: token } = await client.clientCredentialsGrant(service, { scope: 'kms:sign' });
    const active = await client.tokenIntrospection(service, token);
    expect(active).toMatchObject({ active: true, client_id: 'kms-service', scope: 'kms:sign', token_type: 'Bearer' });
    await client.tokenRevocation(service, token);
    expect(await client.tokenIntrospection(service, token)).toEqual({ active: false });
    expect(await client.tokenIntrospection(service, 'not-a-token')).toMatchObject({ active: false });
  });

  it('runs authorization code + PKCE through the login form, then rotates refresh tokens and revokes the grant on reuse', async () => {
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    expect(callback.origin + callback.pathname).toBe(SPA_REDIRECT);
    const tokens = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()?.preferred_username).toBe('demo-user');
    const access = decodeJwt(tokens.access_token);
    expect(access).toMatchObject({ aud: 'https://127.0.0.1:8081', scope: 'kms:encrypt', client_id: 'demo-spa' });
    expect(access.gid).toEqual(expect.any(String));
    const first = tokens.refresh_token!;
    const rotated = await client.refreshTokenGrant(spa, first);
    expect(rotated.refresh_token).toBeDefined();
    expect(rotated.refresh_token).not.toBe(first);
    expect((await client.tokenIntrospection(service, rotated.access_token)).active).toBe(true);
    // Replaying the first refresh token is reuse: the whole grant and every token from it are revoked.
    await expect(client.refreshTokenGrant(spa, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.refreshTokenGrant(spa, rotated.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect((await client.tokenIntrospection(service, rotated.access_token)).active).toBe(false);
    expect((await client.tokenIntrospection(service, tokens.access_token)).active).toBe(false);
  });

  it('revoking a refresh token cascades to the access tokens of its grant', async () => {
    const web = await t.discover('demo-web', client.ClientSecretBasic(DEMO_WEB_SECRET));
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: 'https://127.0.0.1:8443/callback',
      scope: 'openid offline_access kms:sign',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser(t.fetch, t.identity.issuer);
    const login = await browser.follow(url.toString());
    const loginHtml = await login.response.text();
    const consent = await browser.follow(new URL(formAction(loginHtml), t.identity.issuer).toString(), {
      form: { csrf: formValue(loginHtml, 'csrf'), username: 'demo-admin', password: 'demo-admin-password' },
    });
    const consentHtml = await consent.response.text();
    expect(consentHtml).toContain('Allow access?');
    expect(consentHtml).toContain('kms:sign');
    const done = await browser.follow(new URL(formAction(consentHtml), t.identity.issuer).toString(), {
      form: { csrf: formValue(consentHtml, 'csrf') },
    });
    const tokens = await client.authorizationCodeGrant(web, new URL(done.url), {
      pkceCodeVerifier: verifier,
      idTokenExpected: true,
    });
    expect((await client.tokenIntrospection(service, tokens.access_token)).active).toBe(true);
    await client.tokenRevocation(web, tokens.refresh_token!);
    expect((await client.tokenIntrospection(service, tokens.access_token)).active).toBe(false);
  });

  it('refuses an authorization request without a code challenge or with plain', async () => {
    for (const params of [{}, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }]) {
      const url = client.buildAuthorizationUrl(spa, { redirect_uri: SPA_REDIRECT, scope: 'openid', ...params });
      const browser = new Browser(t.fetch, t.identity.issuer);
      const { url: landed } = await browser.follow(url.toString());
      expect(new URL(landed).searchParams.get('error')).toBe('invalid_request');
    }
  });

  it('answers a wrong password and an unknown user the same way, then locks the account', async () => {
    const attempt = async (username: string, password: string) => {
      const { url } = await startPkce(spa);
      const browser = new Browser(t.fetch, t.identity.issuer);
      const page = await browser.follow(url.toString());
      const html = await page.response.text();
      const response = await browser.request(new URL(formAction(html), t.identity.issuer).toString(), {
        form: { csrf: formValue(html, 'csrf'), username, password },
      });
      return {
        status: response.status,
        body: (await response.text()).replace(/value="[^"]*"|\/interaction\/[^/"]+/g, ''),
      };
    };
    const unknown = await attempt('nobody-here', 'whatever-password');
    const wrong = await attempt('demo-admin', 'wrong-password');
    expect(unknown.status).toBe(401);
    expect(wrong).toEqual(unknown);
    expect(unknown.body).toContain('Invalid username or password.');
    for (let i = 0; i < 4; i++) await attempt('demo-admin', 'wrong-password');
    // Locked now: even the right password is refused, with the same message.
    expect(await attempt('demo-admin', 'demo-admin-password')).toEqual(unknown);
  });

  it('refuses a login form without the CSRF token', async () => {
    const { url } = await startPkce(spa);
    const browser = new Browser(t.fetch, t.identity.issuer);
    const html = await (await browser.follow(url.toString())).response.text();
    const response = await browser.request(new URL(formAction(html), t.identity.issuer).toString(), {
      form: { csrf: 'forged', username: 'demo-user', password: 'demo-user-password' },
    });
    expect(response.status).toBe(403);
  });

  it('rotates signing keys: old tokens stay valid, new tokens use the new key', async () => {
    const before = await client.clientCredentialsGrant(service, { scope: 'kms:read' });
    const oldKid = decodeProtectedHeader(before.access_token).kid;
    await t.identity.rotateSigningKeys();
    const after = await client.clientCredentialsGrant(service, { scope: 'kms:read' });
    expect(decodeProtectedHeader(after.access_token).kid).not.toBe(oldKid);
    expect((await client.tokenIntrospection(service, before.access_token)).active).toBe(true);
    const jwks = (await (await t.fetch(`${t.identity.issuer}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toEqual(
      expect.arrayContaining([oldKid, decodeProtectedHeader(after.access_token).kid]),
    );
  });
});
