/**
 * Token exchange (RFC 8693, identity.md "Token exchange"): a confidential client allowed the grant (the demo
 * `kms-service`, or one made through the admin API) trades a user's access token for a narrower JWT for the
 * KMS, with `sub` = the user, `client_id` and `act.sub` = the client (nested for a second exchange), no longer
 * lived than the subject token; every refusal with its RFC error code; audited with subject and actor.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import * as client from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  ADMIN_TOKEN,
  DEMO_WEB_SECRET,
  KMS_SERVICE_SECRET,
  SECRETS_WITH_ADMIN_TOKEN,
  loginThroughForm,
  spaTokenRequest,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const KMS = 'https://127.0.0.1:8081';

describeEachDatabase('token exchange (RFC 8693)', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, { secrets: SECRETS_WITH_ADMIN_TOKEN });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const kmsService = basic('kms-service', KMS_SERVICE_SECRET);

  async function exchange(authorization: string | undefined, form: Record<string, string>) {
    const res = await t.fetch(`${t.identity.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(authorization ? { authorization } : {}),
      },
      body: new URLSearchParams({ grant_type: GRANT, subject_token_type: ACCESS_TOKEN, ...form }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** demo-user signs in to demo-spa; returns its KMS access token (kms:encrypt kms:read) and refresh token. */
  async function userTokens() {
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, state, url } = await startPkce(spa, { scope: 'openid offline_access kms:encrypt kms:read' });
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const tokens = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token! };
  }

  async function adminCreateClient(metadata: Record<string, unknown>) {
    const res = await undiciFetch(`${t.identity.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { client_id: string; client_secret?: string };
  }

  it('lists the grant type in discovery', async () => {
    const discovery = (await (await t.fetch(`${t.identity.issuer}/.well-known/openid-configuration`)).json()) as {
      grant_types_supported: string[];
    };
    expect(discovery.grant_types_supported).toContain(GRANT);
  });

  it('exchanges a user token for a narrower KMS token naming the service as actor, and audits it', async () => {
    const { accessToken } = await userTokens();
    const subject = decodeJwt(accessToken);
    expect(subject.scope).toBe('kms:encrypt kms:read');
    const answer = await exchange(kmsService, { subject_token: accessToken, audience: KMS, scope: 'kms:encrypt' });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      issued_token_type: ACCESS_TOKEN,
      token_type: 'Bearer',
      scope: 'kms:encrypt',
      expires_in: expect.any(Number),
    });
    const jwks = (await (await t.fetch(`${t.identity.issuer}/jwks`)).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(String(answer.body.access_token), createLocalJWKSet(jwks), {
      issuer: t.identity.issuer,
      audience: KMS,
      typ: 'at+jwt',
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({
      sub: subject.sub,
      client_id: 'kms-service',
      act: { sub: 'kms-service' },
      scope: 'kms:encrypt',
      gid: subject.gid,
      roles: ['user'],
    });
    // No longer than the subject token.
    expect(payload.exp!).toBeLessThanOrEqual(subject.exp!);
    expect(Number(answer.body.expires_in)).toBeLessThanOrEqual(subject.exp! - Math.floor(Date.now() / 1000) + 1);

    // Introspection shows it active, with the actor.
    const introspected = await t.fetch(`${t.identity.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: kmsService, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: String(answer.body.access_token) }).toString(),
    });
    expect(await introspected.json()).toMatchObject({ active: true, sub: subject.sub, act: { sub: 'kms-service' } });

    // Audited: the service as actor, the user as subject, the audience as resource.
    const audit = await undiciFetch(`${t.identity.adminUrl}/admin/v1/audit?event=identity.token.exchanged`, {
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const { items } = (await audit.json()) as { items: Record<string, unknown>[] };
    expect(items.at(-1)).toMatchObject({
      actor: 'kms-service',
      subject: subject.sub,
      resource: KMS,
      outcome: 'success',
    });
  });

  it('defaults to every scope the subject token, the client and the audience share (resource works too)', async () => {
    const { accessToken } = await userTokens();
    const answer = await exchange(kmsService, { subject_token: accessToken, resource: KMS });
    expect([answer.status, answer.body.scope]).toEqual([200, 'kms:encrypt kms:read']);
  });

  it('nests the earlier actor when an exchanged token is exchanged again', async () => {
    const { accessToken } = await userTokens();
    const first = await exchange(kmsService, { subject_token: accessToken, audience: KMS, scope: 'kms:encrypt' });
    const reporting = await adminCreateClient({
      client_name: 'Reporting',
      grant_types: [GRANT],
      scope: 'kms:encrypt kms:read',
    });
    const second = await exchange(basic(reporting.client_id, reporting.client_secret!), {
      subject_token: String(first.body.access_token),
      audience: KMS,
    });
    expect(second.status).toBe(200);
    expect(decodeJwt(String(second.body.access_token))).toMatchObject({
      client_id: reporting.client_id,
      scope: 'kms:encrypt',
      act: { sub: reporting.client_id, act: { sub: 'kms-service' } },
    });
  });

  it('refuses a scope wider than the subject token, or than the client, with invalid_scope', async () => {
    const { accessToken } = await userTokens();
    // kms-service may decrypt and administer, but the user's token does not carry those scopes.
    for (const scope of ['kms:encrypt kms:decrypt', 'kms:admin']) {
      const answer = await exchange(kmsService, { subject_token: accessToken, audience: KMS, scope });
      expect([answer.status, answer.body.error]).toEqual([400, 'invalid_scope']);
    }
    const narrowClient = await adminCreateClient({ grant_types: [GRANT], scope: 'kms:read' });
    const answer = await exchange(basic(narrowClient.client_id, narrowClient.client_secret!), {
      subject_token: accessToken,
      audience: KMS,
      scope: 'kms:encrypt',
    });
    expect([answer.status, answer.body.error]).toEqual([400, 'invalid_scope']);
  });

  it('refuses an unknown or ambiguous audience with invalid_target', async () => {
    const { accessToken } = await userTokens();
    for (const target of [
      { audience: 'https://elsewhere.example' },
      { resource: 'https://elsewhere.example' },
      { audience: KMS, resource: 'https://elsewhere.example' },
      {},
    ]) {
      const answer = await exchange(kmsService, { subject_token: accessToken, ...target });
      expect([answer.status, answer.body.error]).toEqual([400, 'invalid_target']);
    }
  });

  it('refuses subject tokens that are not an active user access token with invalid_grant', async () => {
    const { accessToken, refreshToken } = await userTokens();
    const machine = await t.fetch(`${t.identity.issuer}/token`, {
      method: 'POST',
      headers: { authorization: kmsService, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'kms:encrypt' }).toString(),
    });
    const machineToken = String(((await machine.json()) as { access_token: string }).access_token);
    const tampered = `${accessToken.slice(0, -4)}AAAA`;
    for (const subjectToken of [machineToken, tampered, 'not-a-token']) {
      const answer = await exchange(kmsService, { subject_token: subjectToken, audience: KMS });
      expect([answer.status, answer.body.error]).toEqual([400, 'invalid_grant']);
    }
    // A revoked grant (here: refresh-token reuse) ends the subject token too.
    expect(
      (await spaTokenRequest(t.fetch, t.identity.issuer, { grant_type: 'refresh_token', refresh_token: refreshToken }))
        .status,
    ).toBe(200);
    await spaTokenRequest(t.fetch, t.identity.issuer, { grant_type: 'refresh_token', refresh_token: refreshToken });
    const revoked = await exchange(kmsService, { subject_token: accessToken, audience: KMS });
    expect([revoked.status, revoked.body.error]).toEqual([400, 'invalid_grant']);
  });

  it('refuses malformed requests with invalid_request', async () => {
    const { accessToken } = await userTokens();
    const cases: Record<string, string>[] = [
      { audience: KMS },
      { subject_token: accessToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', audience: KMS },
      { subject_token: accessToken, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { subject_token: accessToken, audience: KMS, actor_token: accessToken, actor_token_type: ACCESS_TOKEN },
    ];
    for (const form of cases) {
      const answer = await exchange(kmsService, form);
      expect([answer.status, answer.body.error]).toEqual([400, 'invalid_request']);
    }
  });

  it('refuses clients not allowed the grant and public clients with unauthorized_client', async () => {
    const { accessToken } = await userTokens();
    const web = await exchange(basic('demo-web', DEMO_WEB_SECRET), { subject_token: accessToken, audience: KMS });
    expect([web.status, web.body.error]).toEqual([400, 'unauthorized_client']);
    const publicClient = await adminCreateClient({
      grant_types: [GRANT],
      token_endpoint_auth_method: 'none',
      scope: 'kms:encrypt',
    });
    const answer = await exchange(undefined, {
      client_id: publicClient.client_id,
      subject_token: accessToken,
      audience: KMS,
    });
    expect([answer.status, answer.body.error]).toEqual([400, 'unauthorized_client']);
    const unauthenticated = await exchange(undefined, { client_id: 'kms-service', subject_token: accessToken });
    expect([unauthenticated.status, unauthenticated.body.error]).toEqual([401, 'invalid_client']);
  });
});
