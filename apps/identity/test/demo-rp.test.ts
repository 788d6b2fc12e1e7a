import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { fetch as undiciFetch } from 'undici';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  Browser,
  formAction,
  formValue,
  startTestIdentity,
  type TestIdentity,
  ADMIN_TOKEN,
  SECRETS_WITH_ADMIN_TOKEN,
} from './harness.js';

describeEachDatabase('demo relying party', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, {
      secrets: SECRETS_WITH_ADMIN_TOKEN,
      // A resource server that is not running: the page must say so instead of failing.
      resources: [{ uri: 'https://127.0.0.1:9', scopes: ['kms:read', 'kms:encrypt', 'kms:decrypt'] }],
    });
    const patched = await undiciFetch(`${t.identity.adminUrl}/admin/v1/clients/demo-spa`, {
      method: 'PATCH',
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [`${t.identity.issuer}/demo/rp/callback`] }),
    });
    expect(patched.status).toBe(200);
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('signs a person in with code + PKCE and shows the token claims, without scripts', async () => {
    const browser = new Browser(t.fetch, t.identity.issuer);
    const intro = await browser.request(`${t.identity.issuer}/demo/rp`);
    expect(intro.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await intro.text()).toContain('Sign in with cryptoutil Identity');
    const start = await browser.request(`${t.identity.issuer}/demo/rp/start`);
    const authorize = new URL(start.headers.get('location') ?? '');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${t.identity.issuer}/demo/rp/callback`);
    const login = await browser.follow(authorize.toString());
    const html = await login.response.text();
    const done = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
      form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
    });
    expect(done.url).toBe(`${t.identity.issuer}/demo/rp`);
    const page = await done.response.text();
    expect(page).toContain('2. Your tokens');
    expect(page).toContain('&quot;client_id&quot;: &quot;demo-spa&quot;');
    // The page asked for its token with a DPoP proof (answering Identity's nonce): the token is bound.
    expect(page).toMatch(/&quot;cnf&quot;: \{\s*&quot;jkt&quot;: &quot;[A-Za-z0-9_-]{43}&quot;/);
    expect(page).not.toContain('<script');

    const refused = await browser.request(`${t.identity.issuer}/demo/rp/encrypt`, { form: { text: 'x' } });
    expect(refused.status).toBe(403);
    const result = await browser.request(`${t.identity.issuer}/demo/rp/encrypt`, {
      form: { csrf: formValue(page, 'csrf'), text: 'x' },
    });
    expect(await result.text()).toContain('cannot be reached');
  });

  it('refuses a callback that did not start here', async () => {
    const browser = new Browser(t.fetch, t.identity.issuer);
    const res = await browser.request(`${t.identity.issuer}/demo/rp/callback?code=x&state=forged`);
    expect(res.status).toBe(400);
  });
});
