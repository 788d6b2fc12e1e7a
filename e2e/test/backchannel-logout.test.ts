/**
 * Back-channel logout end to end (identity.md "Beyond the anchors", #16): a person signs in to the KMS
 * console through Identity's real login page in Chromium, then signs out at Identity; Identity posts a
 * signed logout token to the KMS, which ends that console session. Real processes over TLS 1.3, on SQLite
 * and (with TEST_DATABASE_URL) PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { browserSuite, launchChromium } from './browser.js';
import { startStack, type Stack } from './stack.js';

const ENGINES = process.env.TEST_DATABASE_URL ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);

/** The console session as the page sees it: the status of `GET /browser/api/v1/session` and its JSON. */
const sessionOf = (page: Page) =>
  page.evaluate(async () => {
    const res = await fetch('/browser/api/v1/session', { credentials: 'same-origin' });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  });

for (const engine of ENGINES) {
  browserSuite('back-channel logout e2e')(`back-channel logout ends the KMS console session (${engine})`, () => {
    let stack: Stack;
    beforeAll(async () => {
      const url = engine === 'sqlite' ? 'sqlite' : await testPostgresUrl();
      stack = await startStack({ url, schemaPrefix: `e2e_bcl_${Date.now()}` });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('signs in to the console through Identity, and a sign-out at Identity ends the console session', async () => {
      const browser = await launchChromium(stack);
      try {
        const page = await browser.newPage();
        await page.goto(`${stack.kms.publicUrl}/ui/`);
        await page.getByRole('link', { name: 'Sign in with cryptoutil Identity' }).click();
        await page.getByLabel('Username').fill('demo-user');
        await page.getByLabel('Password').fill('demo-user-password');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.waitForURL((url) => url.toString().startsWith(`${stack.kms.publicUrl}/ui/`));
        const signedIn = await sessionOf(page);
        expect(signedIn.status).toBe(200);
        expect(signedIn.body).toMatchObject({ username: 'demo-user' });
        expect(signedIn.body.scopes).toEqual(expect.arrayContaining(['kms:read']));

        // The callback cannot be replayed: its state was used up.
        const replay = await page.goto(`${stack.kms.publicUrl}/browser/api/v1/identity/callback?state=x&code=y`);
        expect(replay?.status()).toBe(400);

        await page.goto(`${stack.identity.publicUrl}/session/end`);
        await page.getByRole('button', { name: 'Yes, sign me out' }).click();
        await page.getByRole('heading', { name: 'Signed out' }).waitFor();

        await page.goto(`${stack.kms.publicUrl}/ui/`);
        expect((await sessionOf(page)).status).toBe(401);
      } finally {
        await browser.close();
      }
    });

    it('refuses a logout token that Identity did not sign, without ending anything', async () => {
      const forged = [
        Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url'),
        Buffer.from(JSON.stringify({ iss: stack.identity.publicUrl, aud: 'kms-console', sub: 'x' })).toString(
          'base64url',
        ),
        '',
      ].join('.');
      const res = await stack.fetch(`${stack.kms.publicUrl}/browser/api/v1/identity/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: forged }).toString(),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    });
  });
}
