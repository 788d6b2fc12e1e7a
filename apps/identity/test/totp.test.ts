import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { matchTotp } from '../src/domain/totp.js';
import {
  Browser,
  SPA_REDIRECT,
  formAction,
  formValue,
  startPkce,
  startTestIdentity,
  type TestIdentity,
  ADMIN_TOKEN,
  SECRETS_WITH_ADMIN_TOKEN,
} from './harness.js';

const PASSWORD = 'totp-user-password-1234';

/** RFC 6238 written out here (HMAC-SHA1, 30 s, 6 digits), independent of the library the server uses. */
function rfc6238(base32Secret: string, at: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of base32Secret.replace(/=+$/, '')) bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  return ((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).toString().padStart(6, '0');
}

describe('TOTP codes', () => {
  it('matches the RFC 6238 SHA-1 test vector (last six digits) and tolerates one step of drift only', () => {
    // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082.
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    expect(matchTotp(secret, '287082', 59_000)).toBe(1);
    expect(matchTotp(secret, '287082', 59_000 + 30_000)).toBe(1);
    expect(matchTotp(secret, '287082', 59_000 + 60_000)).toBeUndefined();
    expect(matchTotp(secret, 'abcdef', 59_000)).toBeUndefined();
    expect(rfc6238(secret, 59_000)).toBe('287082');
  });
});

describeEachDatabase('Identity TOTP second factor', (db) => {
  let t: TestIdentity;
  let spa: client.Configuration;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await undiciFetch(`${t.identity.adminUrl}${path}`, {
      method,
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** The audit events of one user (as actor), oldest first, as `event:reason`. */
  const auditOf = async (userId: string) => {
    await admin('GET', '/admin/v1/audit/verify'); // flushes pending group commits
    const { items } = (await admin('GET', `/admin/v1/audit?actor=${userId}&size=100`)).body as {
      items: { event: string; reason: string | null }[];
    };
    return items.map((item) => `${item.event}:${item.reason ?? ''}`);
  };

  /** Password step through the real form; returns the browser and the page that follows it. */
  const password = async (username: string) => {
    const { verifier, state, url } = await startPkce(spa);
    const browser = new Browser(t.fetch, t.identity.issuer);
    const login = await browser.follow(url.toString());
    const html = await login.response.text();
    const next = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
      form: { csrf: formValue(html, 'csrf'), username, password: PASSWORD },
    });
    return { browser, verifier, state, page: next, html: await next.response.text() };
  };

  const submitCode = async (flow: Awaited<ReturnType<typeof password>>, code: string, html = flow.html) =>
    flow.browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
      form: { csrf: formValue(html, 'csrf'), code },
    });

  beforeAll(async () => {
    t = await startTestIdentity(db, {
      secrets: SECRETS_WITH_ADMIN_TOKEN,
      login: { max_failures: 3, lockout_seconds: 900 },
    });
    spa = await t.discover('demo-spa', client.None());
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('enrols with a QR code at the first sign-in, then challenges, refuses a replayed code, and records amr', async () => {
    const username = `totp-${db.dialect}`;
    const created = await admin('POST', '/admin/v1/users', { username, password: PASSWORD, totp_required: true });
    expect(created.body).toMatchObject({ totp_required: true, totp_enrolled: false });

    const enrol = await password(username);
    expect(enrol.page.response.status).toBe(200);
    expect(enrol.html).toContain('Set up two-step verification');
    expect(enrol.html).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(enrol.html)?.[1] ?? '';
    expect(secret).toHaveLength(32);
    const qr = Buffer.from(/base64,([A-Za-z0-9+/=]+)/.exec(enrol.html)![1]!, 'base64').toString('utf8');
    expect(qr).toContain('<svg');

    const wrong = await submitCode(enrol, '000000' === rfc6238(secret, Date.now()) ? '111111' : '000000');
    expect(wrong.response.status).toBe(401);
    const retry = await wrong.response.text();
    expect(retry).toContain('That code is not valid');
    const enrolCode = rfc6238(secret, Date.now());
    const done = await submitCode(enrol, enrolCode, retry);
    expect(done.url.startsWith(SPA_REDIRECT)).toBe(true);
    const tokens = await client.authorizationCodeGrant(spa, new URL(done.url), {
      pkceCodeVerifier: enrol.verifier,
      expectedState: enrol.state,
    });
    expect(tokens.claims()?.amr).toEqual(['pwd', 'otp']);
    const enrolled = await admin('GET', `/admin/v1/users/${String(created.body.id)}`);
    expect(enrolled.body).toMatchObject({ totp_required: false, totp_enrolled: true });

    // The secret is stored as a JWE, never as the base32 text.
    const [row] = await t.identity.db.all<{ totp_secret: string }>(
      sql`SELECT totp_secret FROM identity_users WHERE username = ${username}`,
    );
    expect(row!.totp_secret.split('.')).toHaveLength(5);
    expect(row!.totp_secret).not.toContain(secret);

    const again = await password(username);
    expect(again.html).toContain('Two-step verification');
    expect(again.html).not.toContain('<img');
    const replay = await submitCode(again, enrolCode);
    expect(replay.response.status).toBe(401);
    // The next step's code is within the allowed drift and has not been used.
    const fresh = await submitCode(again, rfc6238(secret, Date.now() + 30_000), await replay.response.text());
    expect(fresh.url.startsWith(SPA_REDIRECT)).toBe(true);
    expect(await auditOf(String(created.body.id))).toEqual([
      'identity.login.password_verified:',
      'identity.mfa.failed:invalid_code',
      'identity.mfa.enrolled:',
      'identity.login.password_verified:',
      'identity.mfa.failed:invalid_code',
      'identity.mfa.verified:',
    ]);
  });

  it('locks the account after repeated wrong codes, and an administrator can reset the authenticator', async () => {
    const username = `totp-lock-${db.dialect}`;
    const created = await admin('POST', '/admin/v1/users', { username, password: PASSWORD, totp_required: true });
    const id = String(created.body.id);
    const enrol = await password(username);
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(enrol.html)?.[1] ?? '';
    expect((await submitCode(enrol, rfc6238(secret, Date.now()))).url.startsWith(SPA_REDIRECT)).toBe(true);

    const flow = await password(username);
    let html = flow.html;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const answer = await submitCode(flow, rfc6238(secret, Date.now() - 10 * 60_000), html);
      expect(answer.response.status).toBe(401);
      html = await answer.response.text();
    }
    const locked = await admin('GET', `/admin/v1/users/${id}`);
    expect(locked.body.locked_until).toEqual(expect.any(String));
    // Even the right code is refused while locked.
    const refused = await submitCode(flow, rfc6238(secret, Date.now() + 30_000), html);
    expect(refused.response.status).toBe(401);
    expect((await auditOf(id)).slice(-5)).toEqual([
      'identity.mfa.failed:invalid_code',
      'identity.mfa.failed:invalid_code',
      'identity.mfa.failed:invalid_code',
      'identity.login.locked:too_many_failures',
      'identity.mfa.failed:locked',
    ]);

    const reset = await admin('PATCH', `/admin/v1/users/${id}`, { reset_totp: true, unlock: true });
    expect(reset.body).toMatchObject({ totp_enrolled: false, locked_until: null });
    const plain = await password(username);
    expect(plain.page.url.startsWith(SPA_REDIRECT)).toBe(true);
  });

  it('refuses a code posted before the password step', async () => {
    const { url } = await startPkce(spa);
    const browser = new Browser(t.fetch, t.identity.issuer);
    const login = await browser.follow(url.toString());
    const html = await login.response.text();
    const uid = /\/interaction\/([^/]+)\/login/.exec(html)![1]!;
    const skipped = await browser.request(`${t.identity.issuer}/interaction/${uid}/totp`, {
      form: { csrf: formValue(html, 'csrf'), code: '123456' },
    });
    expect(skipped.status).toBe(400);
  });
});
