/**
 * The KMS web console (`/ui/`) in headless Chromium against a KMS started with `--demo`: sign in, create a
 * key pool, rotate it, encrypt in the playground and decrypt the result, see the 403 message for a user
 * lacking a permission, fit a 375 px wide screen, and pass axe-core with no serious or critical violation on
 * every page. The screenshots go to docs/images/ (README and docs use them).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startStack, type Stack } from './stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IMAGES = resolve(import.meta.dirname ?? '.', '../../docs/images');
const suite = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM))
  console.warn(`KMS console test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium).`);

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

let axeSource: string;

/** Serious and critical axe-core findings on the current page (axe must have checked something). */
async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run: () => Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }
    ).axe;
    const { violations, passes } = await axe.run();
    return { violations, passed: passes.length };
  });
  expect(results.passed).toBeGreaterThan(5);
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map(
      (violation) =>
        `${violation.id}: ${violation.help} at ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`,
    );
}

suite('KMS web console (headless Chromium)', () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    axeSource = await readFile(join(dirname(createRequire(import.meta.url).resolve('axe-core')), 'axe.min.js'), 'utf8');
    await mkdir(IMAGES, { recursive: true });
    stack = await startStack({ url: 'sqlite' }, { kmsFlags: ['--demo'] });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--ignore-certificate-errors-spki-list=${stack.leafPins.join(',')}`,
      ],
    });
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
