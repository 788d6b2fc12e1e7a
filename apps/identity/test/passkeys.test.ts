/**
 * Passkeys through the real pages, with a software authenticator playing the browser and the device:
 * enrolment after the password (and after TOTP when the user has it), the passkey as second factor (or
 * TOTP, the user's choice), passwordless sign-in from the login page; single-use challenges, the origin,
 * the signature counter and the lockout enforced. The relying party is configured (`webauthn.rp_id`,
 * `origins`) as behind a proxy: the listener is 127.0.0.1, the browser sees https://login.example.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import * as client from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { createLogger } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { identityConfigSchema } from '../src/config.js';
import { startIdentity } from '../src/server.js';
import { passkeysUsable, relyingPartyFor } from '../src/domain/passkeys.js';
import {
  ADMIN_TOKEN,
  Browser,
  SECRETS_WITH_ADMIN_TOKEN,
  SPA_REDIRECT,
  formAction,
  formValue,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';
import { SoftwareAuthenticator } from './software-authenticator.js';

const PASSWORD = 'passkey-user-password-1234';
const RP_ID = 'login.example';
const ORIGIN = 'https://login.example';

/** RFC 6238 (HMAC-SHA1, 30 s, 6 digits), as in totp.test.ts. */
function totpCode(base32Secret: string, at = Date.now()): string {
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

const unescapeHtml = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The passkey form of a page: where it posts, and the WebAuthn options it carries. */
function passkeyForm(html: string): {
  action: string;
  mode: string;
  options: Record<string, unknown> & { challenge: string };
} {
  const match = /<form method="post" action="([^"]+)" data-webauthn="(create|get)" data-options="([^"]+)">/.exec(html);
  if (!match) throw new Error(`no passkey form in the page: ${html}`);
  return {
    action: unescapeHtml(match[1]!),
    mode: match[2]!,
    options: JSON.parse(unescapeHtml(match[3]!)) as Record<string, unknown> & { challenge: string },
  };
}

describe('relying party', () => {
  it('is the issuer host and origin unless configured, and is off on an IP address (browsers refuse one)', () => {
    const settings = { rp_name: 'cryptoutil Identity' };
    expect(relyingPartyFor('https://id.example:8443', settings)).toEqual({
      id: 'id.example',
      name: 'cryptoutil Identity',
      origins: ['https://id.example:8443'],
    });
    const proxied = relyingPartyFor('https://10.0.0.5:8082', {
      ...settings,
      rp_id: 'id.example',
      origins: ['https://id.example/'],
    });
    expect(proxied.origins).toEqual(['https://id.example']);
    expect(passkeysUsable(proxied)).toBe(true);
    expect(passkeysUsable(relyingPartyFor('https://127.0.0.1:8082', settings))).toBe(false);
    expect(passkeysUsable(relyingPartyFor('https://[::1]:8082', settings))).toBe(false);
    expect(passkeysUsable(relyingPartyFor('https://localhost:8082', settings))).toBe(true);
  });
});

describeEachDatabase('Identity passkeys', (db) => {
  let t: TestIdentity;
  let spa: client.Configuration;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await undiciFetch(`${t.identity.adminUrl}${path}`, {
      method,
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as Record<string, unknown> };
  };
  const auditOf = async (userId: string) => {
    await admin('GET', '/admin/v1/audit/verify');
    const { items } = (await admin('GET', `/admin/v1/audit?actor=${userId}&size=100`)).body as {
      items: { event: string; reason: string | null }[];
    };
    return items.map((item) => `${item.event}:${item.reason ?? ''}`);
  };
  const newUser = async (name: string, extra: Record<string, unknown>) => {
    const created = await admin('POST', '/admin/v1/users', {
      username: `${name}-${db.dialect}`,
      password: PASSWORD,
      ...extra,
    });
    expect(created.status).toBe(201);
    return { id: String(created.body.id), username: String(created.body.username) };
  };

  /** An authorization request in a fresh browser; the login page it shows. */
  const start = async () => {
    const { verifier, state, url } = await startPkce(spa);
    const browser = new Browser(t.fetch, t.identity.issuer);
    const login = await browser.follow(url.toString());
    expect(login.response.status).toBe(200);
    return { browser, verifier, state, html: await login.response.text() };
  };
  type Flow = Awaited<ReturnType<typeof start>>;
  const post = (flow: Flow, action: string, form: Record<string, string>, html = flow.html) =>
    flow.browser.follow(new URL(action, t.identity.issuer).toString(), {
      form: { csrf: formValue(html, 'csrf'), ...form },
    });
  /** The password step; the page after it. */
  const password = async (username: string) => {
    const flow = await start();
    const next = await post(flow, formAction(flow.html), { username, password: PASSWORD });
    return { flow, response: next.response, url: next.url, html: await next.response.text() };
  };
  /** Posts the authenticator's answer to the page's passkey form. */
  const answer = async (flow: Flow, html: string, response: string) => {
    const done = await post(flow, passkeyForm(html).action, { response }, html);
    return { status: done.response.status, url: done.url, html: await done.response.text() };
  };
  const amrOf = async (flow: Flow, callback: string) => {
    const tokens = await client.authorizationCodeGrant(spa, new URL(callback), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
    });
    return tokens.claims()?.amr;
  };

  beforeAll(async () => {
    t = await startTestIdentity(db, {
      secrets: SECRETS_WITH_ADMIN_TOKEN,
      login: { max_failures: 3, lockout_seconds: 900 },
      webauthn: { rp_id: RP_ID, origins: [ORIGIN] },
    });
    spa = await t.discover('demo-spa', client.None());
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('enrols a required passkey after the password, then asks for it as the second factor', async () => {
    const user = await newUser('pk-second', { passkey_required: true });
    const device = new SoftwareAuthenticator(RP_ID, ORIGIN);

    const enrol = await password(user.username);
    expect(enrol.response.status).toBe(200);
    expect(enrol.html).toContain('Add a passkey');
    expect(enrol.html).toContain('<script src="/assets/passkey.js" defer></script>');
    expect(enrol.response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const create = passkeyForm(enrol.html);
    expect(create.mode).toBe('create');
    expect(create.options).toMatchObject({
      rp: { id: RP_ID, name: 'cryptoutil Identity' },
      user: { name: user.username },
      authenticatorSelection: { residentKey: 'required' },
      attestation: 'none',
    });
    // A registration made for another origin is refused, and its challenge is gone with it.
    const foreign = await answer(
      enrol.flow,
      enrol.html,
      device.register(create.options as never, { origin: 'https://evil.example' }),
    );
    expect(foreign.status).toBe(400);
    expect(foreign.html).toContain('The passkey could not be added');
    const registered = await answer(
      enrol.flow,
      foreign.html,
      device.register(passkeyForm(foreign.html).options as never),
    );
    expect(registered.url.startsWith(SPA_REDIRECT)).toBe(true);
    expect(await amrOf(enrol.flow, registered.url)).toEqual(['pwd', 'hwk']);

    const listed = await admin('GET', `/admin/v1/users/${user.id}/passkeys`);
    expect(listed.body.items).toEqual([
      { id: device.id, transports: ['internal'], sign_count: 0, created_at: expect.any(String), last_used_at: null },
    ]);
    expect((await admin('GET', `/admin/v1/users/${user.id}`)).body).toMatchObject({ passkey_required: false });

    const again = await password(user.username);
    expect(again.html).toContain('Use your passkey');
    expect(again.html).not.toContain('authenticator app instead');
    const get = passkeyForm(again.html);
    expect(get.mode).toBe('get');
    expect(get.options).toMatchObject({ rpId: RP_ID, allowCredentials: [{ id: device.id, type: 'public-key' }] });
    const verified = await answer(again.flow, again.html, device.assert(get.options));
    expect(verified.url.startsWith(SPA_REDIRECT)).toBe(true);
    expect(await amrOf(again.flow, verified.url)).toEqual(['pwd', 'hwk']);
    expect((await admin('GET', `/admin/v1/users/${user.id}/passkeys`)).body.items).toEqual([
      expect.objectContaining({ sign_count: 1, last_used_at: expect.any(String) }),
    ]);
    expect(await auditOf(user.id)).toEqual([
      'identity.login.password_verified:',
      'identity.passkey.enrol_failed:verification_failed',
      'identity.passkey.enrolled:',
      'identity.login.password_verified:',
      'identity.passkey.verified:',
    ]);

    // An administrator deletes the passkey (a lost device): the password alone signs in again.
    expect((await admin('DELETE', `/admin/v1/users/${user.id}/passkeys/${device.id}`)).status).toBe(204);
    expect((await admin('DELETE', `/admin/v1/users/${user.id}/passkeys/${device.id}`)).status).toBe(404);
    expect((await password(user.username)).url.startsWith(SPA_REDIRECT)).toBe(true);
  });

  it('signs in with the passkey alone from the login page; refuses a wrong origin, a replayed challenge and a regressed counter, then locks', async () => {
    const user = await newUser('pk-alone', { passkey_required: true });
    const device = new SoftwareAuthenticator(RP_ID, ORIGIN);
    const enrol = await password(user.username);
    const registered = await answer(enrol.flow, enrol.html, device.register(passkeyForm(enrol.html).options as never));
    expect(registered.url.startsWith(SPA_REDIRECT)).toBe(true);

    // Without user verification a passkey alone is not enough.
    const unverified = await start();
    const noUv = await answer(
      unverified,
      unverified.html,
      device.assert(passkeyForm(unverified.html).options, { noUserVerification: true }),
    );
    expect(noUv.status).toBe(401);
    expect(noUv.html).toContain('That passkey could not sign you in');

    const flow = await start();
    expect(flow.html).toContain('Sign in with a passkey');
    const offer = passkeyForm(flow.html);
    expect(offer.action).toMatch(/\/passkey-login$/);
    expect(offer.options).toMatchObject({ rpId: RP_ID, userVerification: 'required' });
    expect(offer.options.allowCredentials ?? []).toEqual([]);
    const done = await answer(flow, flow.html, device.assert(offer.options));
    expect(done.url.startsWith(SPA_REDIRECT)).toBe(true);
    expect(await amrOf(flow, done.url)).toEqual(['hwk', 'mfa']);

    // The sign-in cleared the failure count; three failures from here lock the account.
    const attack = await start();
    const challenge = passkeyForm(attack.html).options;
    const wrongOrigin = await answer(attack, attack.html, device.assert(challenge, { origin: 'https://evil.example' }));
    expect(wrongOrigin.status).toBe(401);
    // The right answer to the first challenge comes too late: that challenge was taken.
    const replayed = await answer(attack, wrongOrigin.html, device.assert(challenge));
    expect(replayed.status).toBe(401);
    // A genuine signature over a fresh challenge, but with an older counter: a cloned authenticator.
    const cloned = await answer(
      attack,
      replayed.html,
      device.assert(passkeyForm(replayed.html).options, { counter: 1 }),
    );
    expect(cloned.status).toBe(401);
    expect((await admin('GET', `/admin/v1/users/${user.id}`)).body.locked_until).toEqual(expect.any(String));
    // Locked: even a good assertion is refused.
    const locked = await answer(attack, cloned.html, device.assert(passkeyForm(cloned.html).options));
    expect(locked.status).toBe(401);
    expect(await auditOf(user.id)).toEqual([
      'identity.login.password_verified:',
      'identity.passkey.enrolled:',
      'identity.passkey.failed:verification_failed',
      'identity.login.passkey:',
      'identity.passkey.failed:verification_failed',
      'identity.passkey.failed:verification_failed',
      'identity.passkey.failed:counter_regression',
      'identity.login.locked:too_many_failures',
      'identity.passkey.failed:locked',
    ]);
  });

  it('with TOTP and a passkey: enrols the passkey after the TOTP step, then lets the user choose either', async () => {
    const user = await newUser('pk-both', { totp_required: true, passkey_required: true });
    const device = new SoftwareAuthenticator(RP_ID, ORIGIN);
    const first = await password(user.username);
    expect(first.html).toContain('Set up two-step verification');
    const secret = /<code>([A-Z2-7]+)<\/code>/.exec(first.html)![1]!;
    const totp = await post(first.flow, formAction(first.html), { code: totpCode(secret) }, first.html);
    const enrolPage = await totp.response.text();
    expect(enrolPage).toContain('Add a passkey');
    const enrolled = await answer(first.flow, enrolPage, device.register(passkeyForm(enrolPage).options as never));
    expect(await amrOf(first.flow, enrolled.url)).toEqual(['pwd', 'otp', 'hwk']);

    const second = await password(user.username);
    expect(second.html).toContain('Use your passkey');
    const link = /href="(\/interaction\/[^"]+\/totp)"/.exec(second.html)![1]!;
    const totpPage = await second.flow.browser.follow(new URL(link, t.identity.issuer).toString());
    const totpHtml = await totpPage.response.text();
    expect(totpHtml).toContain('Two-step verification');
    expect(totpHtml).toContain('Use a passkey instead');
    const viaTotp = await post(
      second.flow,
      formAction(totpHtml),
      { code: totpCode(secret, Date.now() + 30_000) },
      totpHtml,
    );
    expect(await amrOf(second.flow, viaTotp.url)).toEqual(['pwd', 'otp']);
  });

  // Two instances on one database: the challenge one issued, the other takes (once). PostgreSQL only: this
  // suite's SQLite database is in memory, which a second process cannot share (SQLite files: instances.test.ts).
  const onSharedDatabase = db.dialect === 'postgres' ? it : undefined;
  onSharedDatabase?.('finishes on a second instance a ceremony the first began', async () => {
    const second = await startIdentity({
      config: identityConfigSchema.parse({
        server: { public_port: 0, admin_port: 0, issuer: t.identity.issuer },
        database: { url: db.url(), schema: db.schema },
        tls: { dir: t.tlsDir },
        secrets: SECRETS_WITH_ADMIN_TOKEN,
        webauthn: { rp_id: RP_ID, origins: [ORIGIN] },
      }),
      logger: createLogger({ service: 'identity', silent: true }),
      version: 'test',
      dev: true,
    });
    try {
      const user = await newUser('pk-two', { passkey_required: true });
      const device = new SoftwareAuthenticator(RP_ID, ORIGIN);
      const enrol = await password(user.username);
      const form = passkeyForm(enrol.html);
      const onSecond = await enrol.flow.browser.request(new URL(form.action, second.publicUrl).toString(), {
        form: { csrf: formValue(enrol.html, 'csrf'), response: device.register(form.options as never) },
      });
      expect(onSecond.status).toBe(303);
      expect((await admin('GET', `/admin/v1/users/${user.id}/passkeys`)).body.items).toHaveLength(1);

      const flow = await start();
      const offer = passkeyForm(flow.html);
      const answerText = device.assert(offer.options);
      const url = (base: string) => new URL(offer.action, base).toString();
      const signedIn = await flow.browser.request(url(second.publicUrl), {
        form: { csrf: formValue(flow.html, 'csrf'), response: answerText },
      });
      expect(signedIn.status).toBe(303);
      // The same answer again, on the first instance: its challenge is gone.
      const replay = await flow.browser.request(url(t.identity.publicUrl), {
        form: { csrf: formValue(flow.html, 'csrf'), response: answerText },
      });
      expect(replay.status).not.toBe(303);
    } finally {
      await second.close();
    }
  });

  it('refuses passkey steps before the password, and a form without the answer', async () => {
    const flow = await start();
    const uid = /\/interaction\/([^/]+)\/login/.exec(flow.html)![1]!;
    const csrf = formValue(flow.html, 'csrf');
    for (const path of ['passkey', 'passkey/enrol']) {
      const early = await flow.browser.request(`${t.identity.issuer}/interaction/${uid}/${path}`, {
        form: { csrf, response: '{}' },
      });
      expect([path, early.status]).toEqual([path, 400]);
    }
    const empty = await flow.browser.request(`${t.identity.issuer}/interaction/${uid}/passkey-login`, {
      form: { csrf },
    });
    expect(empty.status).toBe(400);
    expect(empty.headers.get('content-type')).toContain('application/problem+json');
    const forged = await flow.browser.request(`${t.identity.issuer}/interaction/${uid}/passkey-login`, {
      form: { csrf: 'x'.repeat(43), response: '{}' },
    });
    expect(forged.status).toBe(403);
    const garbage = await flow.browser.request(`${t.identity.issuer}/interaction/${uid}/passkey-login`, {
      form: { csrf, response: 'not json' },
    });
    expect(garbage.status).toBe(401);
    const script = await t.fetch(`${t.identity.issuer}/assets/passkey.js`);
    expect([script.status, script.headers.get('content-type')]).toEqual([200, 'application/javascript; charset=utf-8']);
    expect(await script.text()).toContain('navigator.credentials');
  });
});
