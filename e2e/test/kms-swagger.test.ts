/**
 * Swagger UI "Try it out" against a KMS started with `--demo`, in headless Chromium: sign in on the browser
 * API with a demo user (`POST /login`), then create an elastic key and encrypt with it. The page keeps the
 * session cookie and sends the CSRF token itself (apps/kms/src/api/swagger-session.ts).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';
import { browserSuite, launchChromium } from './browser.js';
import { startStack, type Stack } from './stack.js';

const suite = browserSuite('KMS Swagger UI test');

/** Opens an operation, presses "Try it out", lets `fill` set its inputs, executes it and returns the response. */
async function tryItOut(page: Page, operationId: string, fill: (operation: Locator) => Promise<void>) {
  const operation = page.locator(`[id$="-${operationId}"]`).first();
  await operation.locator('.opblock-summary').first().click();
  await operation.getByRole('button', { name: 'Try it out' }).click();
  await fill(operation);
  await operation.getByRole('button', { name: 'Execute' }).click();
  const live = operation.locator('.live-responses-table .response').first();
  await live.waitFor();
  const status = Number((await live.locator('.response-col_status').first().textContent())?.trim());
  const body =
    (await live
      .locator('.response-col_description .microlight, .response-col_description pre')
      .first()
      .textContent()) ?? '';
  return { status, body };
}

suite('KMS Swagger UI "Try it out" (headless Chromium)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ url: 'sqlite' }, { kmsFlags: ['--demo'] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('signs in as a demo user, creates an elastic key and encrypts with it', async () => {
    const browser = await launchChromium(stack);
    const page = await browser.newPage();
    try {
      await page.goto(`${stack.kms.publicUrl}/ui/swagger/`);
      const info = page.locator('.info').first();
      await info.waitFor();
      expect(await info.textContent()).toContain('demo-tenant-admin-password');

      const login = await tryItOut(page, 'login', async (operation) => {
        await operation
          .locator('textarea.body-param__text')
          .fill(JSON.stringify({ username: 'demo-tenant-admin', password: 'demo-tenant-admin-password' }));
      });
      expect(login.status).toBe(200);
      expect(login.body).toContain('csrf_token');
      const cookies = await page.context().cookies();
      expect(cookies.find((cookie) => cookie.name === '__Host-kms_session')).toMatchObject({
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
      });

      await page.locator('.scheme-container select').first().selectOption('/browser/api/v1');
      const created = await tryItOut(page, 'createElasticKey', async (operation) => {
        await operation
          .locator('textarea.body-param__text')
          .fill(JSON.stringify({ name: 'from-swagger', description: 'made in Swagger UI', algorithm: 'A256GCM/dir' }));
      });
      expect(created.status).toBe(201);
      const keyId = (JSON.parse(created.body) as { elastic_key_id: string }).elastic_key_id;

      const encrypted = await tryItOut(page, 'encrypt', async (operation) => {
        await operation.locator('tr[data-param-name="id"] input').fill(keyId);
        await operation.locator('textarea.body-param__text').fill('secret from the browser');
      });
      expect(encrypted.status).toBe(200);
      expect(encrypted.body.trim().split('.')).toHaveLength(5);
    } catch (error) {
      await page.screenshot({ path: `${stack.dir}/swagger-failure.png`, fullPage: true });
      throw new Error(`${String(error)} (screenshot: ${stack.dir}/swagger-failure.png)`);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
