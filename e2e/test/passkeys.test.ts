/**
 * Passkeys in headless Chromium against the real Identity process over TLS, with Chromium's virtual
 * authenticator (CDP `WebAuthn`: CTAP2, internal transport, resident keys, user verification) as the
 * device. A person an administrator asked for a passkey signs in with the password and registers one, signs
 * out, signs in with password + passkey (second factor), signs out, then signs in with the passkey alone;
 * each time the tokens work at userinfo and carry the right `amr`. The pages run under their own CSP (no
 * bypass), so the ceremonies prove the passkey script loads and runs under it; the passkey pages pass
 * axe-core. WebAuthn refuses an IP address as relying-party id, so this stack's issuer is
 * https://localhost:<port> (the relying party is the issuer's host).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { accessibilityProblems, browserSuite, launchChromium } from './browser.js';
import { startStack, type Stack } from './stack.js';

const suite = browserSuite('Passkeys test');
const PASSWORD = 'kim-password-123456';
const VERIFIER = randomBytes(32).toString('base64url');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

suite('Passkeys (headless Chromium, virtual authenticator)', () => {
  let stack: Stack;
  let browser: Browser;
  let callback: http.Server;
  let callbackUrl: string;

  beforeAll(async () => {
    stack = await startStack({ url: 'sqlite' }, { issuerHost: 'localhost' });
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

  const admin = async (method: string, path: string, body?: object) => {
    const res = await stack.fetch(`${stack.identity.adminUrl}/admin/v1/${path}`, {
      method,
      headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return (await res.json()) as Record<string, unknown>;
  };

  /** Exchanges the code at the callback; checks the access token at userinfo; returns the id token's claims. */
  const tokensFrom = async (page: Page, clientId: string, userId: string) => {
    const code = new URL(page.url()).searchParams.get('code') ?? '';
    stack.secrets.add(code);
    const res = await stack.fetch(`${stack.identity.publicUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: callbackUrl,
        client_id: clientId,
        code_verifier: VERIFIER,
      }).toString(),
    });
    expect([res.status, res.status === 200 ? '' : await res.clone().text()]).toEqual([200, '']);
    const tokens = (await res.json()) as { access_token: string; id_token: string };
    stack.secrets.add(tokens.access_token);
    stack.secrets.add(tokens.id_token);
    const me = await stack.fetch(`${stack.identity.publicUrl}/me`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { sub: string }).sub).toBe(userId);
    return decodeJwt(tokens.id_token);
  };

  async function virtualAuthenticator(context: BrowserContext, page: Page): Promise<{ cdp: CDPSession; id: string }> {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, id: authenticatorId };
  }

  it('registers a passkey after the password, then uses it as second factor and alone; tokens work', async () => {
    stack.secrets.add(PASSWORD);
    const user = await admin('POST', 'users', { username: 'kim', password: PASSWORD, passkey_required: true });
    const userId = String(user.id);
    const registered = await admin('POST', 'clients', {
      client_name: 'Passkeys test app',
      grant_types: ['authorization_code'],
      redirect_uris: [callbackUrl],
      token_endpoint_auth_method: 'none',
      // A public client must use DPoP by default; this test is about something else (DPoP: dpop.test.ts).
      dpop_bound_access_tokens: false,
      scope: 'openid profile',
    });
    const clientId = String(registered.client_id);
    const authorize = new URL(`${stack.identity.publicUrl}/auth`);
    for (const [key, value] of Object.entries({
      client_id: clientId,
      redirect_uri: callbackUrl,
      response_type: 'code',
      scope: 'openid profile',
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(key, value);
    }
    expect(new URL(stack.identity.publicUrl).hostname).toBe('localhost');

    const context = await browser.newContext();
    const page = await context.newPage();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
    });
    const problems: string[] = [];
    const { cdp, id: authenticatorId } = await virtualAuthenticator(context, page);
    const signOut = async () => {
      await page.goto(`${stack.identity.publicUrl}/session/end`);
      await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    };
    /** Signing out ended the grant too, so each sign-in asks for consent again. */
    const allow = async () => {
      await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((url) => url.toString().startsWith(callbackUrl));
    };
    try {
      // 1. Password, then the passkey the administrator asked for.
      await page.goto(authorize.toString());
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Username').fill('kim');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'Add a passkey' }).waitFor();
      problems.push(...(await accessibilityProblems(page)).map((problem) => `passkey-enrol: ${problem}`));
      await page.getByRole('button', { name: 'Add passkey' }).click();
      await allow();
      expect((await tokensFrom(page, clientId, userId)).amr).toEqual(['pwd', 'hwk']);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      expect(credentials.map((credential) => [credential.isResidentCredential, credential.rpId])).toEqual([
        [true, 'localhost'],
      ]);
      const passkeys = (await admin('GET', `users/${userId}/passkeys`)).items as { id: string }[];
      expect(passkeys.map((passkey) => passkey.id)).toEqual([
        // CDP reports the id in standard base64; Identity keeps WebAuthn's base64url.
        Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'),
      ]);
      await signOut();

      // 2. Password + passkey as the second factor.
      await page.goto(authorize.toString());
      await page.getByLabel('Username').fill('kim');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'Use your passkey' }).waitFor();
      problems.push(...(await accessibilityProblems(page)).map((problem) => `passkey: ${problem}`));
      await page.getByRole('button', { name: 'Use passkey' }).click();
      await allow();
      expect((await tokensFrom(page, clientId, userId)).amr).toEqual(['pwd', 'hwk']);
      await signOut();

      // 3. The passkey alone, from the login page.
      await page.goto(authorize.toString());
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      problems.push(...(await accessibilityProblems(page)).map((problem) => `login-with-passkey: ${problem}`));
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
      await allow();
      expect((await tokensFrom(page, clientId, userId)).amr).toEqual(['hwk', 'mfa']);
      const [after] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
      // Identity kept the authenticator's counter (it refuses any answer that does not move it forward).
      const [stored] = (await admin('GET', `users/${userId}/passkeys`)).items as { sign_count: number }[];
      expect(stored!.sign_count).toBe(after!.signCount);
      expect(after!.signCount).toBeGreaterThan(1);
      expect(problems).toEqual([]);
      expect(refused).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);
});
