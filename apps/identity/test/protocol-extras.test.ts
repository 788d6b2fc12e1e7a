import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { deleteExpiredOidcModels, oidcAdapterFactory } from '../src/data/oidc-adapter.js';
import { credentialSealer } from '../src/domain/credential-sealer.js';
import { atRestKey } from '../src/domain/signing-keys.js';
import { OIDC_MIGRATIONS } from '../src/data/oidc-schema.js';
import { IDENTITY_MIGRATIONS } from '../src/data/schema.js';
import {
  Browser,
  DEMO_WEB_SECRET,
  KMS_SERVICE_SECRET,
  SPA_REDIRECT,
  formAction,
  formValue,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

describeEachDatabase('Identity protocol extras and storage', (db) => {
  let t: TestIdentity;
  let spa: client.Configuration;
  beforeAll(async () => {
    t = await startTestIdentity(db);
    spa = await t.discover('demo-spa', client.None());
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  async function userTokens(scope: string) {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(spa, {
      redirect_uri: SPA_REDIRECT,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser(t.fetch, t.identity.issuer);
    const html = await (await browser.follow(url.toString())).response.text();
    const done = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
      form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
    });
    return {
      browser,
      tokens: await client.authorizationCodeGrant(spa, new URL(done.url), { pkceCodeVerifier: verifier }),
    };
  }

  it('serves userinfo for an OpenID access token', async () => {
    const { tokens } = await userTokens('openid profile email');
    const claims = await client.fetchUserInfo(spa, tokens.access_token, tokens.claims()!.sub);
    expect(claims).toMatchObject({
      preferred_username: 'demo-user',
      name: 'Demo User',
      email: 'demo-user@example.invalid',
    });
  });

  it('accepts pushed authorization requests (PAR)', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const url = await client.buildAuthorizationUrlWithPAR(spa, {
      redirect_uri: SPA_REDIRECT,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
  });

  it('logs out (RP-initiated) and ends the session', async () => {
    const { browser, tokens } = await userTokens('openid');
    const logout = client.buildEndSessionUrl(spa, { id_token_hint: tokens.id_token! });
    const confirm = await browser.follow(logout.toString());
    const html = await confirm.response.text();
    expect(confirm.response.status).toBe(200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect(xsrf).toBeDefined();
    const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
    const done = await browser.follow(new URL(action, t.identity.issuer).toString(), {
      form: { xsrf: xsrf!, logout: 'yes' },
    });
    expect([200, 303]).toContain(done.response.status);
    // A new authorization needs a new login: the session is gone.
    const url = client.buildAuthorizationUrl(spa, {
      redirect_uri: SPA_REDIRECT,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    expect(await (await browser.follow(url.toString())).response.text()).toContain('Sign in');
  });

  it('lets the user cancel the login, returning access_denied to the client', async () => {
    const url = client.buildAuthorizationUrl(spa, {
      redirect_uri: SPA_REDIRECT,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const browser = new Browser(t.fetch, t.identity.issuer);
    const html = await (await browser.follow(url.toString())).response.text();
    const abort = /href="([^"]+\/abort)"/.exec(html)?.[1] ?? '';
    const done = await browser.follow(new URL(abort, t.identity.issuer).toString());
    expect(new URL(done.url).searchParams.get('error')).toBe('access_denied');
  });

  it('guards JWT introspection and revocation with client authentication and ownership', async () => {
    const service = await t.discover('kms-service', client.ClientSecretBasic(KMS_SERVICE_SECRET));
    const { access_token: token } = await client.clientCredentialsGrant(service, { scope: 'kms:verify' });
    const post = (path: string, auth: string) =>
      t.fetch(`${t.identity.issuer}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(auth).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token }).toString(),
      });
    const wrong = await post('/token/introspection', 'kms-service:wrong-secret');
    expect([wrong.status, ((await wrong.json()) as { error: string }).error]).toEqual([401, 'invalid_client']);
    expect((await post('/token/revocation', 'nobody:x')).status).toBe(401);
    // A malformed form encoding in Basic credentials is a failed authentication, not a server error
    // (and the access log, which reads the client id, does not trip over it either).
    const malformed = await post('/token/introspection', '%zz:x');
    expect([malformed.status, ((await malformed.json()) as { error: string }).error]).toEqual([401, 'invalid_client']);
    expect((await t.fetch(`${t.identity.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    // Another client may not revoke it: RFC 7009 still answers 200, and the token stays active.
    expect((await post('/token/revocation', `demo-web:${DEMO_WEB_SECRET}`)).status).toBe(200);
    expect((await client.tokenIntrospection(service, token)).active).toBe(true);
    await expect(
      client.clientCredentialsGrant(service, { scope: 'kms:read', resource: 'https://elsewhere.example' }),
    ).rejects.toMatchObject({
      error: 'invalid_target',
    });
  });

  it('stores every model in the database and sweeps expired ones', async () => {
    const raw = await db.open([...IDENTITY_MIGRATIONS, ...OIDC_MIGRATIONS]);
    let clock = Date.now();
    const sealer = credentialSealer(atRestKey('test-at-rest-key-0123456789abcdef0123', 'device-codes'));
    const adapter = oidcAdapterFactory(raw, { sealer, now: () => clock })('Session');
    await adapter.upsert('s-1', { uid: 'u-1', accountId: 'a', grantId: 'g-1' }, 60);
    expect(await adapter.findByUid('u-1')).toMatchObject({ accountId: 'a' });
    await adapter.consume('s-1');
    expect((await adapter.find('s-1'))?.consumed).toEqual(expect.any(Number));
    const codes = oidcAdapterFactory(raw, { sealer, now: () => clock })('DeviceCode');
    await codes.upsert('d-1', { userCode: 'ABCD', grantId: 'g-1' }, 60);
    expect(await codes.findByUserCode('ABCD')).toMatchObject({ userCode: 'ABCD' });
    await codes.revokeByGrantId('g-1');
    expect(await adapter.find('s-1')).toBeUndefined();
    await adapter.upsert('s-2', { uid: 'u-2' }, 1);
    clock += 2000;
    expect(await adapter.find('s-2')).toBeUndefined();
    expect(await deleteExpiredOidcModels(raw, clock)).toBeGreaterThanOrEqual(1);
    await adapter.upsert('s-3', { uid: 'u-3' });
    await adapter.destroy('s-3');
    expect(await adapter.find('s-3')).toBeUndefined();
    const [row] = await t.identity.db.all<{ n: number }>(
      sql`SELECT COUNT(*) AS n FROM identity_oidc_models WHERE model = ${'Session'}`,
    );
    expect(Number(row?.n)).toBeGreaterThan(0);
  });
});
