import { afterAll, beforeAll, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  ADMIN_TOKEN,
  KMS_SERVICE_SECRET,
  SECRETS_WITH_ADMIN_TOKEN,
  loginThroughForm,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

interface Record {
  seq: number;
  event: string;
  actor: string | null;
  resource: string | null;
  outcome: string;
  reason: string | null;
}

describeEachDatabase('Identity audit trail', (db) => {
  let t: TestIdentity;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await undiciFetch(`${t.identity.adminUrl}${path}`, {
      method,
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as { items: Record[]; head: string; ok?: boolean } };
  };
  const since = async (seq: number) => {
    await new Promise((done) => setTimeout(done, 50));
    await admin('GET', '/admin/v1/audit/verify'); // flushes pending group commits
    return (await admin('GET', '/admin/v1/audit?size=1000')).body.items.filter((record) => record.seq > seq);
  };
  const lastSeq = async () => (await admin('GET', '/admin/v1/audit?size=1000')).body.items.at(-1)?.seq ?? 0;

  beforeAll(async () => {
    t = await startTestIdentity(db, { secrets: SECRETS_WITH_ADMIN_TOKEN });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('records sign-ins, failed sign-ins, token grants and admin changes, ids only, in a verified chain', async () => {
    const start = await lastSeq();
    const spa = await t.discover('demo-spa', client.None());
    const wrong = await startPkce(spa);
    await loginThroughForm(t, wrong.url, 'demo-user', 'not-the-password');
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    await client.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const service = await t.discover('kms-service', client.ClientSecretBasic(KMS_SERVICE_SECRET));
    await client.clientCredentialsGrant(service, { scope: 'kms:read' });
    expect(
      (await admin('POST', '/admin/v1/users', { username: 'audited', password: 'audited-password-1' })).status,
    ).toBe(201);

    const records = await since(start);
    const summary = records.map((record) => [record.event, record.outcome, record.reason]);
    expect(summary).toEqual(
      expect.arrayContaining([
        ['identity.login.failed', 'failure', 'wrong_password'],
        ['identity.login.password_verified', 'success', null],
        ['identity.token.issued', 'success', null],
        ['identity.admin.users.post', 'success', null],
      ]),
    );
    const issued = records.filter((record) => record.event === 'identity.token.issued');
    expect(issued.map((record) => [record.actor, record.resource])).toEqual(
      expect.arrayContaining([
        ['demo-spa', 'authorization_code'],
        ['kms-service', 'client_credentials'],
      ]),
    );
    expect(records.find((record) => record.event === 'identity.admin.users.post')?.actor).toBe('admin-token');
    const stored = JSON.stringify(records);
    for (const secret of ['demo-user-password', 'not-the-password', 'audited-password-1', KMS_SERVICE_SECRET, 'eyJ']) {
      expect(stored).not.toContain(secret);
    }
    expect((await admin('GET', '/admin/v1/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('records refused token requests, refresh-token reuse with the grant it revokes, and a lockout, once each', async () => {
    expect(
      (await admin('POST', '/admin/v1/users', { username: 'lockable', password: 'lockable-password-1' })).status,
    ).toBe(201);
    const start = await lastSeq();
    const impostor = await t.discover('kms-service', client.ClientSecretBasic('not-the-client-secret'));
    await client.clientCredentialsGrant(impostor, { scope: 'kms:read' }).then(
      () => expect('a wrong client secret').toBe('refused'),
      (error: unknown) => expect(error).toMatchObject({ status: 401 }),
    );
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const first = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    await client.refreshTokenGrant(spa, first.refresh_token!);
    await client.refreshTokenGrant(spa, first.refresh_token!).then(
      () => expect('a reused refresh token').toBe('refused'),
      (error: unknown) => expect(error).toMatchObject({ error: 'invalid_grant' }),
    );
    // Revocation: the owner revokes its token (jti recorded); a wrong secret is refused at both endpoints.
    const service = await t.discover('kms-service', client.ClientSecretBasic(KMS_SERVICE_SECRET));
    const serviceToken = (await client.clientCredentialsGrant(service, { scope: 'kms:read' })).access_token;
    await client.tokenRevocation(service, serviceToken);
    await client.tokenRevocation(impostor, serviceToken).then(
      () => expect('a wrong client secret').toBe('refused'),
      (error: unknown) => expect(error).toMatchObject({ status: 401 }),
    );
    await client.tokenIntrospection(impostor, serviceToken).then(
      () => expect('a wrong client secret').toBe('refused'),
      (error: unknown) => expect(error).toMatchObject({ status: 401 }),
    );
    for (let attempt = 0; attempt < 5; attempt++) {
      await loginThroughForm(t, (await startPkce(spa)).url, 'lockable', `wrong-guess-${attempt}`);
    }
    await loginThroughForm(t, (await startPkce(spa)).url, 'lockable', 'lockable-password-1');

    const records = await since(start);
    const count = (event: string) => records.filter((record) => record.event === event).length;
    expect(records.find((record) => record.event === 'identity.token.refused')).toMatchObject({
      actor: 'kms-service',
      resource: 'client_credentials',
      outcome: 'failure',
      reason: 'invalid_client',
    });
    expect(count('identity.token.refused')).toBe(1);
    const jti = String(JSON.parse(Buffer.from(serviceToken.split('.')[1]!, 'base64url').toString()).jti);
    const revocations = records.filter((record) => record.event.includes('revoc') || record.event.endsWith('.revoked'));
    expect(revocations.map((r) => [r.event, r.actor, r.resource, r.reason])).toEqual([
      ['identity.grant.revoked', 'demo-spa', expect.any(String), null],
      ['identity.token.revoked', 'kms-service', jti, null],
      ['identity.token.revocation_refused', 'kms-service', null, 'invalid_client'],
    ]);
    expect(records.filter((record) => record.event === 'identity.introspection.refused')).toEqual([
      expect.objectContaining({ actor: 'kms-service', reason: 'invalid_client' }),
    ]);
    expect(records.filter((record) => record.event === 'identity.token.reuse_detected')).toEqual([
      expect.objectContaining({ actor: 'demo-spa', resource: 'refresh_token', reason: 'invalid_grant' }),
    ]);
    const issued = records.filter((record) => record.event === 'identity.token.issued').map((r) => r.resource);
    expect(issued).toEqual(['authorization_code', 'refresh_token', 'client_credentials']);
    // Five wrong passwords lock the account; the right password while locked still fails, as "locked".
    const lockable = records.filter((record) => record.actor === 'lockable').map((r) => [r.event, r.reason]);
    expect(lockable).toEqual([
      ...Array.from({ length: 5 }, () => ['identity.login.failed', 'wrong_password']),
      ['identity.login.locked', 'too_many_failures'],
      ['identity.login.failed', 'locked'],
    ]);
    const stored = JSON.stringify(records);
    for (const secret of [
      'not-the-client-secret',
      'lockable-password-1',
      'wrong-guess-',
      first.refresh_token!,
      serviceToken,
    ]) {
      expect(stored).not.toContain(secret);
    }
    expect((await admin('GET', '/admin/v1/audit/verify')).body).toMatchObject({ ok: true });
  }, 60_000);
});
