/**
 * The KMS web console (`/ui/`) in headless Chromium against a KMS started with `--demo`: sign in, create a
 * key pool, rotate it, encrypt in the playground and decrypt the result, see the 403 message for a user
 * lacking a permission, mark a public-only version, fit a 375 px wide screen, and pass axe-core with no
 * serious or critical violation on every page. The screenshots go to docs/images/ (README and docs use them).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { IMAGES, accessibilityProblems, browserSuite, launchChromium } from './browser.js';
import { startStack, type Stack } from './stack.js';

const suite = browserSuite('KMS console test');

suite('KMS web console (headless Chromium)', () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    await mkdir(IMAGES, { recursive: true });
    stack = await startStack({ url: 'sqlite' }, { kmsFlags: ['--demo'] });
    browser = await launchChromium(stack);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const signIn = async (page: Page, username: string) => {
    await page.goto(`${stack.kms.publicUrl}/ui/`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(`${username}-password`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Elastic keys' }).waitFor();
  };

  it('creates a key pool, rotates it, encrypts in the playground and decrypts the result', async () => {
    // bypassCSP only lets the test inject axe-core; the console itself runs under its own CSP.
    const page = await browser.newPage({ bypassCSP: true, viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    const check = async (name: string) => {
      problems.push(...(await accessibilityProblems(page)).map((problem) => `${name}: ${problem}`));
      await page.screenshot({ path: join(IMAGES, `console-${name}.png`), fullPage: true });
    };
    try {
      await page.goto(`${stack.kms.publicUrl}/ui/`);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await check('login');
      await signIn(page, 'demo-tenant-admin');
      await page.getByRole('link', { name: 'demo-encryption-aes256' }).waitFor();
      await check('keys');

      await page.getByLabel('Name', { exact: true }).last().fill('console-key');
      await page.getByLabel('Description').fill('made in the console');
      await page.getByLabel('Algorithm', { exact: true }).last().selectOption('A256GCM/dir');
      await page.getByRole('button', { name: 'Create key pool' }).click();
      await page.getByRole('heading', { name: 'console-key' }).waitFor();
      expect(await page.locator('tbody tr').count()).toBe(1);
      await page.getByRole('button', { name: 'Rotate' }).click();
      await page.getByText('Rotated: new version').waitFor();
      await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 2);
      await check('key');

      await page.getByRole('link', { name: 'Use in playground' }).click();
      await page.getByRole('heading', { name: 'Playground' }).waitFor();
      const input = page.getByLabel('Text to encrypt, or a JWE to decrypt');
      await input.fill('hello from the console');
      await page.getByRole('button', { name: 'Encrypt', exact: true }).click();
      const output = page.getByLabel('Encrypt', { exact: true });
      await output.waitFor();
      const jwe = await output.inputValue();
      expect(jwe.split('.')).toHaveLength(5);
      await input.fill(jwe);
      await page.getByRole('button', { name: 'Decrypt', exact: true }).click();
      const decrypted = page.getByLabel('Decrypt', { exact: true });
      await decrypted.waitFor();
      expect(await decrypted.inputValue()).toBe('hello from the console');
      await check('playground');

      await page.setViewportSize({ width: 375, height: 800 });
      await page.goto(`${stack.kms.publicUrl}/ui/#/keys`);
      await page.getByRole('heading', { name: 'Elastic keys' }).waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await page.screenshot({ path: join(IMAGES, 'console-keys-375.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('marks a version imported from a public key alone as public key only', async () => {
    const api = `${stack.kms.publicUrl}/service/api/v1`;
    const headers = {
      authorization: `Basic ${Buffer.from('demo-tenant-admin:demo-tenant-admin-password').toString('base64')}`,
      'content-type': 'application/json',
    };
    const created = await stack.fetch(`${api}/elastickey`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'console-public-only', description: '', algorithm: 'ES256', import_allowed: true }),
    });
    expect(created.status).toBe(201);
    const { elastic_key_id: id } = (await created.json()) as { elastic_key_id: string };
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const imported = await stack.fetch(`${api}/elastickey/${id}/materialkey`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jwk: publicKey.export({ format: 'jwk' }) }),
    });
    expect(imported.status).toBe(201);
    const page = await browser.newPage();
    try {
      await signIn(page, 'demo-tenant-admin');
      await page.goto(`${stack.kms.publicUrl}/ui/#/keys/${id}`);
      await page.getByRole('heading', { name: 'console-public-only' }).waitFor();
      await page.getByText('usable, public key only (encrypt and verify)').waitFor();
    } finally {
      await page.close();
    }
  }, 60_000);

  it('shows the 403 message when a user lacks the permission, and hides what the role cannot do', async () => {
    const page = await browser.newPage();
    try {
      await signIn(page, 'demo-user');
      await page.getByText('Your role cannot create keys.').waitFor();
      await page.getByRole('link', { name: 'Playground' }).click();
      await page.getByRole('heading', { name: 'Playground' }).waitFor();
      await page.getByLabel('Key', { exact: true }).selectOption({ label: 'demo-encryption-aes256 — A256GCM/dir' });
      await page.getByRole('button', { name: 'Generate data key' }).click();
      const status = page.getByRole('status');
      await page.waitForFunction(() => document.getElementById('status')?.className.includes('error'));
      expect(await status.textContent()).toMatch(/Your role does not allow this\..*\(403 insufficient_scope\)/);
    } finally {
      await page.close();
    }
  }, 60_000);
});
