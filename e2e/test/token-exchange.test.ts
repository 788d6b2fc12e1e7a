/**
 * identity.md "Token exchange (RFC 8693)", end to end with real processes: a person signs in through the
 * real login page (headless Chromium); the service `kms-service` exchanges the user's access token for a
 * narrower KMS token naming itself in `act`; the KMS accepts it, and its audit record names the user as
 * subject and the service as actor. A scope wider than the user's token is refused.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { type AppCallback, browserSuite, registerBrowserApp, signInAndAllow, startAppCallback } from './browser.js';
import { KMS_SERVICE_SECRET_FILE, kmsServiceToken, startStack, type Stack } from './stack.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

browserSuite('e2e token exchange test')('a service acts for a signed-in user through token exchange', () => {
  let stack: Stack;
  let callback: AppCallback;

  beforeAll(async () => {
    const url = process.env.TEST_DATABASE_URL ? await testPostgresUrl() : undefined;
    stack = await startStack({ url: url ?? 'sqlite', schemaPrefix: `e2e_exchange_${Date.now()}` });
    callback = await startAppCallback();
  });
  afterAll(async () => {
    await callback?.close();
    await stack?.stop();
  });

  /** demo-user signs in to a browser app through the login and consent pages; returns its access token. */
  async function userAccessToken(): Promise<string> {
    // This test is about token exchange; the app sends plain bearer tokens (DPoP: dpop.test.ts).
    const app = await registerBrowserApp(stack, {
      name: 'E2E exchange app',
      callbackUrl: callback.url,
      scope: 'openid kms:read kms:encrypt',
      dpop: false,
    });
    await signInAndAllow(stack, app, callback.url);
    const redirect = new URL(callback.received.at(-1)!, callback.url);
    stack.secrets.add(redirect.searchParams.get('code')!);
    const tokens = await client.authorizationCodeGrant(app.config, redirect, {
      pkceCodeVerifier: app.verifier,
      expectedState: app.state,
    });
    stack.secrets.add(tokens.access_token);
    return tokens.access_token;
  }

  /** kms-service (the demo seed allows it the grant) exchanges `subjectToken` for a KMS token. */
  async function exchange(subjectToken: string, scope: string) {
    const secret = (await readFile(KMS_SERVICE_SECRET_FILE, 'utf8')).trim();
    const res = await stack.fetch(`${stack.identity.publicUrl}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`kms-service:${secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: GRANT,
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN,
        audience: stack.kms.publicUrl,
        scope,
      }).toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (typeof body.access_token === 'string') stack.secrets.add(body.access_token);
    return { status: res.status, body };
  }

  const kms = (path: string, accessToken: string, body: string, type = 'text/plain') =>
    stack.fetch(`${stack.kms.publicUrl}/service/api/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': type },
      body,
    });

  it('exchanges the user token, encrypts with the KMS, and the KMS audit names the user and the service', async () => {
    const admin = await kmsServiceToken(stack, 'kms:admin');
    const created = await kms(
      '/elastickey',
      admin,
      JSON.stringify({ name: 'e2e-exchange', description: 'e2e', algorithm: 'A256GCM/dir' }),
      'application/json',
    );
    expect(created.status).toBe(201);
    const keyId = String(((await created.json()) as { elastic_key_id: string }).elastic_key_id);

    const userToken = await userAccessToken();
    const user = decodeJwt(userToken);
    expect(user.scope).toBe('kms:read kms:encrypt');

    const exchanged = await exchange(userToken, 'kms:encrypt');
    expect(exchanged.status).toBe(200);
    expect(exchanged.body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer' });
    const claims = decodeJwt(String(exchanged.body.access_token));
    expect(claims).toMatchObject({
      sub: user.sub,
      aud: stack.kms.publicUrl,
      client_id: 'kms-service',
      act: { sub: 'kms-service' },
      scope: 'kms:encrypt',
    });

    const plaintext = 'encrypted by kms-service for demo-user';
    stack.secrets.add(plaintext);
    const jwe = await kms(`/elastickey/${keyId}/encrypt`, String(exchanged.body.access_token), plaintext);
    expect(jwe.status).toBe(200);
    // Narrower: the exchanged token cannot read keys (the user's token could).
    const read = await stack.fetch(`${stack.kms.publicUrl}/service/api/v1/elastickey/${keyId}`, {
      headers: { authorization: `Bearer ${String(exchanged.body.access_token)}` },
    });
    expect(read.status).toBe(403);

    const audit = async (product: 'kms' | 'identity', event: string) => {
      const service = product === 'kms' ? stack.kms : stack.identity;
      const res = await stack.fetch(`${service.adminUrl}/admin/v1/audit?event=${event}&size=1000`, {
        headers: { authorization: `Bearer ${stack.adminToken}` },
      });
      return ((await res.json()) as { items: Record<string, unknown>[] }).items;
    };
    expect((await audit('kms', 'kms.encrypt')).at(-1)).toMatchObject({
      actor: 'kms-service',
      subject: user.sub,
      resource: keyId,
      outcome: 'success',
    });
    expect((await audit('identity', 'identity.token.exchanged')).at(-1)).toMatchObject({
      actor: 'kms-service',
      subject: user.sub,
      resource: stack.kms.publicUrl,
    });

    // kms-service may decrypt, but the user's token does not carry kms:decrypt: refused.
    const wider = await exchange(userToken, 'kms:encrypt kms:decrypt');
    expect([wider.status, wider.body.error]).toEqual([400, 'invalid_scope']);
  });
});
