/**
 * Identity's pages in headless Chromium: a person with two-step verification required signs in, enrols an
 * authenticator (the code is computed from the key the page shows, as an app would), consents and lands at
 * the client, then signs out. Every page (the demo relying party's too) passes axe-core with no serious or critical violation, wears the shared stylesheet
 * under a CSP without inline style, and is saved as a screenshot for the docs. A device (RFC 8628, as the demo
 * CLI does it) gets a code; a person enters it on the device pages, signs in and allows; the device's poll gets
 * tokens the KMS accepts; a denied code ends the device's poll with access_denied.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { IMAGES, accessibilityProblems, browserSuite, launchChromium } from './browser.js';
import { startStack, type Stack } from './stack.js';

const suite = browserSuite('Identity pages test');

suite("Identity's pages (headless Chromium, axe-core)", () => {
  let stack: Stack;
  let browser: Browser;
  let callback: http.Server;
  let callbackUrl: string;

  beforeAll(async () => {
    await mkdir(IMAGES, { recursive: true });
    stack = await startStack({ url: 'sqlite' });
    callback = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in'));
    await new Promise<void>((done) => callback.listen(0, '127.0.0.1', done));
    callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
    browser = await launchChromium(stack);
  });
  afterAll(async () => {
    await browser?.close();
    callback?.closeAllConnections();
    await new Promise((done) => callback?.close(done));
    await stack?.stop();
  });

  const admin = (path: string, body: object) =>
    stack.fetch(`${stack.identity.adminUrl}/admin/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** axe-core on the page, the shared stylesheet applied under its CSP, then a screenshot. */
  async function check(page: Page, name: string): Promise<string[]> {
    const problems = await accessibilityProblems(page);
    const border = await page.evaluate(
      () => getComputedStyle(document.querySelector('main') as Element).borderTopStyle,
    );
    expect([name, border]).toEqual([name, 'solid']);
    await page.screenshot({ path: join(IMAGES, `identity-${name}.png`), fullPage: true });
    return problems.map((problem) => `${name}: ${problem}`);
  }

  it('walks login, authenticator enrolment, consent, logout, the relying party and an error page, all accessible', async () => {
    stack.secrets.add('pat-password-1234');
    expect((await admin('users', { username: 'pat', password: 'pat-password-1234', totp_required: true })).status).toBe(
      201,
    );
    const registered = await admin('clients', {
      client_name: 'Pages test app',
      grant_types: ['authorization_code'],
      redirect_uris: [callbackUrl],
      token_endpoint_auth_method: 'none',
      scope: 'openid profile kms:read',
    });
    const { client_id: clientId } = (await registered.json()) as { client_id: string };
    const authorize = new URL(`${stack.identity.publicUrl}/auth`);
    for (const [key, value] of Object.entries({
      client_id: clientId,
      redirect_uri: callbackUrl,
      response_type: 'code',
      scope: 'openid profile kms:read',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 'pages-test',
    })) {
      authorize.searchParams.set(key, value);
    }

    // bypassCSP only lets the test inject axe-core; the pages' own CSP is what loads the stylesheet.
    const page = await browser.newPage({ bypassCSP: true });
    const problems: string[] = [];
    try {
      await page.goto(authorize.toString());
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      problems.push(...(await check(page, 'login')));
      await page.getByLabel('Username').fill('pat');
      await page.getByLabel('Password').fill('pat-password-1234');
      await page.getByRole('button', { name: 'Sign in' }).click();

      await page.getByRole('heading', { name: 'Set up two-step verification' }).waitFor();
      problems.push(...(await check(page, 'totp-enrol')));
      const secret = (await page.locator('code').first().textContent())?.trim() ?? '';
      // The authenticator key is stored encrypted: the stack's scan proves it is nowhere in clear.
      stack.secrets.add(secret);
      const totp = new TOTP({ secret, algorithm: 'SHA1', digits: 6, period: 30 }).generate();
      await page.getByLabel('Code').fill(totp);
      await page.getByRole('button', { name: 'Verify' }).click();

      await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
      problems.push(...(await check(page, 'consent')));
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((url) => url.toString().startsWith(callbackUrl));
      expect(new URL(page.url()).searchParams.get('state')).toBe('pages-test');
      const code = new URL(page.url()).searchParams.get('code');
      expect(code).toBeTruthy();
      stack.secrets.add(code!);

      await page.goto(`${stack.identity.publicUrl}/session/end`);
      await page.getByRole('heading', { name: 'Sign out?' }).waitFor();
      problems.push(...(await check(page, 'logout')));
      await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      await page.getByRole('heading', { name: 'Signed out' }).waitFor();
      problems.push(...(await check(page, 'signed-out')));

      await page.goto(`${stack.identity.publicUrl}/demo/rp`);
      await page.getByRole('heading', { name: 'Demo relying party' }).waitFor();
      problems.push(...(await check(page, 'relying-party')));

      await page.goto(`${stack.identity.publicUrl}/auth?client_id=no-such-client&response_type=code`);
      await page.getByRole('heading', { name: 'Something went wrong' }).waitFor();
      problems.push(...(await check(page, 'error')));
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('connects a device through the code pages in Chromium; its poll gets tokens the KMS accepts; a denial ends it', async () => {
    const cli = await client.discovery(new URL(stack.identity.publicUrl), 'demo-cli', undefined, client.None(), {
      [client.customFetch]: stack.fetch as client.CustomFetch,
    });
    const device = await client.initiateDeviceAuthorization(cli, { scope: 'openid profile kms:read kms:encrypt' });
    stack.secrets.add(device.device_code);
    expect(device.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    // The device polls meanwhile (openid-client waits the interval, and 5 s more on slow_down).
    const polled = client.pollDeviceAuthorizationGrant(cli, device);

    const page = await browser.newPage({ bypassCSP: true });
    const problems: string[] = [];
    try {
      await page.goto(device.verification_uri);
      await page.getByRole('heading', { name: 'Connect a device' }).waitFor();
      problems.push(...(await check(page, 'device-code')));
      await page.getByLabel('Code').fill('BBBB-BBBB');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('alert').filter({ hasText: 'That code is not valid' }).waitFor();
      problems.push(...(await check(page, 'device-code-error')));

      await page.getByLabel('Code').fill(device.user_code.toLowerCase());
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Connect this device?' }).waitFor();
      expect(await page.locator('code').textContent()).toBe(device.user_code);
      problems.push(...(await check(page, 'device-confirm')));
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Username').fill('demo-user');
      await page.getByLabel('Password').fill('demo-user-password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.getByRole('heading', { name: 'Device connected' }).waitFor();
      problems.push(...(await check(page, 'device-connected')));

      const tokens = await polled;
      stack.secrets.add(tokens.access_token);
      stack.secrets.add(tokens.id_token!);
      expect(decodeJwt(tokens.access_token)).toMatchObject({
        aud: stack.kms.publicUrl,
        client_id: 'demo-cli',
        scope: 'kms:read kms:encrypt',
      });
      expect(tokens.claims()?.preferred_username).toBe('demo-user');
      const keys = await stack.fetch(`${stack.kms.publicUrl}/service/api/v1/elastickeys`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(keys.status).toBe(200);

      // A second device: the complete URI pre-fills the code; the person denies; the device hears access_denied.
      const refused = await client.initiateDeviceAuthorization(cli, { scope: 'openid kms:read' });
      stack.secrets.add(refused.device_code);
      await page.goto(refused.verification_uri_complete!);
      await page.getByRole('heading', { name: 'Connect a device' }).waitFor();
      expect(await page.getByLabel('Code').inputValue()).toBe(refused.user_code);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Deny' }).click();
      await page.getByRole('heading', { name: 'Device not connected' }).waitFor();
      problems.push(...(await check(page, 'device-denied')));
      await expect(client.pollDeviceAuthorizationGrant(cli, refused)).rejects.toMatchObject({ error: 'access_denied' });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);
});
