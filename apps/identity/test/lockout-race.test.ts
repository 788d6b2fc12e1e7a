/**
 * Lockout under parallel guessing (issue #10): failures are counted in one statement each, so ten wrong
 * passwords submitted at once (as a script would, or through several instances) are all counted and lock
 * the account; a read-then-write count would let most of them slip by uncounted.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  Browser,
  SPA_REDIRECT,
  formAction,
  formValue,
  loginThroughForm,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

describeEachDatabase('lockout under parallel guessing', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, {
      login: { max_failures: 5, lockout_seconds: 600 },
      rate_limits: { login_per_ip: null },
    });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('counts ten simultaneous wrong passwords and locks the account', async () => {
    const spa = await t.discover('demo-spa', client.None());
    // Ten sign-in pages open at once, then every form submitted with a wrong password together.
    const forms = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const browser = new Browser(t.fetch, t.identity.issuer);
        const page = await browser.follow((await startPkce(spa)).url.toString());
        const html = await page.response.text();
        return {
          browser,
          action: new URL(formAction(html), t.identity.issuer).toString(),
          csrf: formValue(html, 'csrf'),
        };
      }),
    );
    const answers = await Promise.all(
      forms.map(({ browser, action, csrf }) =>
        browser.follow(action, { form: { csrf, username: 'demo-user', password: 'a-wrong-guess-0000' } }),
      ),
    );
    expect(answers.every((answer) => !answer.url.startsWith(SPA_REDIRECT))).toBe(true);
    // Locked: the right password is refused too.
    const callback = await loginThroughForm(t, (await startPkce(spa)).url, 'demo-user', 'demo-user-password');
    expect(callback.origin + callback.pathname).not.toBe(SPA_REDIRECT);
    const [row] = await t.identity.db.all<{ locked_until: string | null }>(
      sql`SELECT locked_until FROM identity_users WHERE username = 'demo-user'`,
    );
    expect(row?.locked_until).toEqual(expect.any(String));
  });
});
