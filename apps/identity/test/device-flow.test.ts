/**
 * Device authorization grant (RFC 8628, identity.md "Beyond the anchors"): the endpoint in discovery,
 * readable user codes, polling (`authorization_pending`, `slow_down`, tokens once, `expired_token`,
 * `access_denied` when the person denies), the code pages (unknown, expired and used codes with their
 * status, no problem+json), the limit on user-code guesses, and the audit records.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { FormBrowser, formAction } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { ADMIN_TOKEN, SECRETS_WITH_ADMIN_TOKEN, startTestIdentity, type TestIdentity } from './harness.js';
import { DEVICE_GRANT, approveDevice, deviceAuthorization, enterUserCode, pollDevice } from './device-flow.js';

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

describeEachDatabase('device authorization grant', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, {
      secrets: SECRETS_WITH_ADMIN_TOKEN,
      rate_limits: { user_code_per_ip: null },
    });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  /** Makes a device code's payload expired, as the clock would (the row is kept for a late poll). */
  const expire = async (userCode: string) => {
    const normalized = userCode.replace('-', '');
    const [row] = await t.identity.db.all<{ id: string; payload: string }>(
      sql`SELECT id, payload FROM identity_oidc_models WHERE model = 'DeviceCode' AND user_code = ${normalized}`,
    );
    const payload = { ...(JSON.parse(row!.payload) as { exp: number }), exp: Math.floor(Date.now() / 1000) - 1 };
    await t.identity.db.run(
      sql`UPDATE identity_oidc_models SET payload = ${JSON.stringify(payload)} WHERE model = 'DeviceCode' AND id = ${row!.id}`,
    );
  };
  const audit = async () => {
    await t.fetch(`${t.identity.adminUrl}/admin/v1/audit/verify`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const res = await t.fetch(`${t.identity.adminUrl}/admin/v1/audit?size=1000`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return (
      (await res.json()) as {
        items: { event: string; actor: string | null; resource: string | null; reason: string | null }[];
      }
    ).items;
  };

  describe('the device', () => {
    it('finds the endpoint in discovery and gets a readable user code, the interval and the verification URIs', async () => {
      const discovery = (await (await t.fetch(`${t.identity.issuer}/.well-known/openid-configuration`)).json()) as {
        device_authorization_endpoint?: string;
        grant_types_supported?: string[];
      };
      expect(discovery.device_authorization_endpoint).toBe(`${t.identity.issuer}/device/auth`);
      expect(discovery.grant_types_supported).toContain(DEVICE_GRANT);
      const device = await deviceAuthorization(t);
      expect(device).toMatchObject({
        user_code: expect.stringMatching(USER_CODE),
        verification_uri: `${t.identity.issuer}/device`,
        verification_uri_complete: `${t.identity.issuer}/device?user_code=${device.user_code}`,
        expires_in: 600,
        interval: 5,
      });
      expect(device.device_code.length).toBeGreaterThanOrEqual(40);
    });

    it('refuses a client that may not use the grant (oidc-provider calls it invalid_request)', async () => {
      const res = await t.fetch(`${t.identity.issuer}/device/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'client_id=demo-spa&scope=openid',
      });
      expect([res.status, await res.json()]).toEqual([
        400,
        expect.objectContaining({
          error: 'invalid_request',
          error_description: expect.stringContaining('not allowed'),
        }),
      ]);
    });

    it('polls: authorization_pending, then slow_down when it polls faster than the interval', async () => {
      const device = await deviceAuthorization(t);
      const first = await pollDevice(t, device.device_code);
      expect([first.status, first.body.error]).toEqual([400, 'authorization_pending']);
      const second = await pollDevice(t, device.device_code);
      expect([second.status, second.body.error]).toEqual([400, 'slow_down']);
    });

    it('gets tokens once after the person approves, and they are for that person at the KMS', async () => {
      const device = await deviceAuthorization(t, 'openid profile offline_access kms:encrypt');
      expect((await pollDevice(t, device.device_code)).body.error).toBe('authorization_pending');
      const done = await approveDevice(t, device.user_code);
      expect([done.status, done.html]).toEqual([200, expect.stringContaining('Device connected')]);
      const tokens = await pollDevice(t, device.device_code);
      expect(tokens.status).toBe(200);
      expect(tokens.body).toMatchObject({ token_type: 'Bearer', scope: expect.stringContaining('kms:encrypt') });
      const claims = decodeJwt(String(tokens.body.access_token));
      expect(claims).toMatchObject({ aud: 'https://127.0.0.1:8081', client_id: 'demo-cli', scope: 'kms:encrypt' });
      expect(decodeJwt(String(tokens.body.id_token))).toMatchObject({ preferred_username: 'demo-user' });
      expect(tokens.body.refresh_token).toEqual(expect.any(String));
      const again = await pollDevice(t, device.device_code);
      expect([again.status, again.body.error]).toEqual([400, 'invalid_grant']);
    });

    it('is told access_denied when the person denies (at the code or at consent), expired_token once the code expired', async () => {
      const denied = await deviceAuthorization(t);
      const page = await approveDevice(t, denied.user_code, { deny: true });
      expect([page.status, page.html]).toEqual([200, expect.stringContaining('Device not connected')]);
      const refused = await pollDevice(t, denied.device_code);
      expect([refused.status, refused.body.error]).toEqual([400, 'access_denied']);
      // Signed in, then "Deny" on the consent page: the same.
      const declined = await deviceAuthorization(t);
      const consent = await approveDevice(t, declined.user_code, { denyConsent: true });
      expect([consent.status, consent.html]).toEqual([200, expect.stringContaining('Device not connected')]);
      expect((await pollDevice(t, declined.device_code)).body.error).toBe('access_denied');

      const late = await deviceAuthorization(t);
      await expire(late.user_code);
      const expired = await pollDevice(t, late.device_code);
      expect([expired.status, expired.body.error]).toEqual([400, 'expired_token']);
    });
  });

  describe('the pages', () => {
    it('answer an unknown, an expired and a used code with the code page, its status and no problem+json', async () => {
      const unknown = (await enterUserCode(t, 'BBBB-BBBB')).page;
      expect(unknown.status).toBe(404);
      expect(unknown.html).toContain('That code is not valid');
      expect(unknown.html).toContain('value="BBBB-BBBB"');

      const late = await deviceAuthorization(t);
      await expire(late.user_code);
      const expired = (await enterUserCode(t, late.user_code)).page;
      expect([expired.status, expired.html]).toEqual([410, expect.stringContaining('That code has expired')]);

      const used = await deviceAuthorization(t);
      await approveDevice(t, used.user_code);
      const again = (await enterUserCode(t, used.user_code)).page;
      expect([again.status, again.html]).toEqual([409, expect.stringContaining('already used')]);

      // Lower case and without the dash still finds the code (the confirmation shows it normalised).
      const typed = await deviceAuthorization(t);
      const relaxed = (await enterUserCode(t, typed.user_code.replace('-', '').toLowerCase())).page;
      expect([relaxed.status, relaxed.html]).toEqual([200, expect.stringContaining(typed.user_code)]);
    });

    it('render the complete verification URI as the pre-filled code page, with no script', async () => {
      const device = await deviceAuthorization(t);
      const res = await t.fetch(device.verification_uri_complete);
      const html = await res.text();
      expect([res.status, res.headers.get('content-type')]).toEqual([200, expect.stringContaining('text/html')]);
      expect(html).toContain(`value="${device.user_code}"`);
      expect(html).not.toContain('<script');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('cache-control')).toBe('no-store');
    });

    it('refuse a form without the provider’s xsrf value, with or without a session', async () => {
      const device = await deviceAuthorization(t);
      const res = await t.fetch(`${t.identity.issuer}/device`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user_code: device.user_code, xsrf: 'forged' }).toString(),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toContain('The form expired');
      // With the session of an opened page, a forged value is refused the same way, and the code still works.
      const browser = new FormBrowser(t.fetch, t.identity.issuer);
      const page = await (await browser.follow(`${t.identity.issuer}/device`)).response.text();
      const forged = await browser.follow(formAction(page), { form: { user_code: device.user_code, xsrf: 'forged' } });
      expect([forged.response.status, await forged.response.text()]).toEqual([
        400,
        expect.stringContaining('The form expired'),
      ]);
      expect((await approveDevice(t, device.user_code)).html).toContain('Device connected');
    });
  });

  it('records the request, the approval, the denial and a refused code (never a code)', async () => {
    const device = await deviceAuthorization(t);
    await approveDevice(t, device.user_code);
    const denied = await deviceAuthorization(t);
    await approveDevice(t, denied.user_code, { deny: true });
    await pollDevice(t, device.device_code);
    const records = await audit();
    const events = records.map((record) => record.event);
    expect(events).toEqual(
      expect.arrayContaining([
        'identity.device.requested',
        'identity.device.approved',
        'identity.device.denied',
        'identity.device.user_code_refused',
        'identity.token.issued',
      ]),
    );
    expect(records.find((record) => record.event === 'identity.device.requested')).toMatchObject({ actor: 'demo-cli' });
    expect(records.find((record) => record.event === 'identity.device.approved')).toMatchObject({
      resource: 'demo-cli',
      actor: expect.any(String),
    });
    expect(records.find((record) => record.event === 'identity.device.user_code_refused')?.reason).toMatch(/_code$/);
    expect(records.filter((record) => record.reason === 'authorization_pending')).toEqual([]);
    const text = JSON.stringify(records);
    expect(text).not.toContain(device.device_code);
    expect(text).not.toContain(device.user_code);
  });
});

describeEachDatabase('device user-code guesses', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, { rate_limits: { user_code_per_ip: { burst: 3, per_second: 0.001 } } });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('are limited per address: the fourth is a 429 page with Retry-After, and a real code waits too', async () => {
    const statuses = [];
    for (const guess of ['BBBB-BBBB', 'CCCC-CCCC', 'DDDD-DDDD'])
      statuses.push((await enterUserCode(t, guess)).page.status);
    expect(statuses).toEqual([404, 404, 404]);
    const device = await deviceAuthorization(t);
    const refused = await t.fetch(`${t.identity.issuer}/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_code: device.user_code, xsrf: 'x' }).toString(),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(refused.headers.get('content-type')).toContain('text/html');
    expect(await refused.text()).toContain('Too many attempts');
  });
});
