/**
 * Test helpers for the device authorization grant (RFC 8628): the device's side (authorization request,
 * token polls as `demo-cli`) and the person's side through the real pages with the form browser.
 */
import { expect } from '@jest/globals';
import { FormBrowser, formAction, formValue } from '@cryptoutil/infra';
import type { TestIdentity } from './harness.js';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

async function form(t: TestIdentity, path: string, body: Record<string, string>) {
  const res = await t.fetch(`${t.identity.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The device asks (public client `demo-cli`). */
export async function deviceAuthorization(
  t: TestIdentity,
  scope = 'openid profile kms:encrypt',
): Promise<DeviceAuthorization> {
  const answer = await form(t, '/device/auth', { client_id: 'demo-cli', scope });
  expect(answer.status).toBe(200);
  return answer.body as unknown as DeviceAuthorization;
}

/** One poll of the token endpoint with the device code. */
export function pollDevice(t: TestIdentity, deviceCode: string) {
  return form(t, '/token', { client_id: 'demo-cli', grant_type: DEVICE_GRANT, device_code: deviceCode });
}

export interface PageVisit {
  status: number;
  html: string;
  url: string;
}

/** A person at the verification page: enters `userCode` and gets the confirmation page (or an error page). */
export async function enterUserCode(
  t: TestIdentity,
  userCode: string,
  browser = new FormBrowser(t.fetch, t.identity.issuer),
) {
  const start = await browser.follow(`${t.identity.issuer}/device`);
  const html = await start.response.text();
  expect(html).toContain('Connect a device');
  const entered = await browser.follow(formAction(html), {
    form: { xsrf: formValue(html, 'xsrf'), user_code: userCode },
  });
  const page: PageVisit = { status: entered.response.status, html: await entered.response.text(), url: entered.url };
  return { browser, page };
}

/**
 * The whole approval: code, confirmation, sign-in as `username`, consent; `deny` refuses at the
 * confirmation instead, `denyConsent` on the consent page after signing in. Returns the last page.
 */
export async function approveDevice(
  t: TestIdentity,
  userCode: string,
  options: { deny?: boolean; denyConsent?: boolean; username?: string; password?: string } = {},
): Promise<PageVisit> {
  const { browser, page } = await enterUserCode(t, userCode);
  expect([page.status, page.html]).toEqual([200, expect.stringContaining('Connect this device?')]);
  const choice = options.deny ? { abort: 'yes' } : { confirm: 'yes' };
  const confirmed = await browser.follow(formAction(page.html), {
    form: { xsrf: formValue(page.html, 'xsrf'), user_code: formValue(page.html, 'user_code'), ...choice },
  });
  let html = await confirmed.response.text();
  if (options.deny) return { status: confirmed.response.status, html, url: confirmed.url };
  expect(html).toContain('Sign in');
  const username = options.username ?? 'demo-user';
  const signedIn = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
    form: { csrf: formValue(html, 'csrf'), username, password: options.password ?? `${username}-password` },
  });
  html = await signedIn.response.text();
  expect(html).toContain('Allow access?');
  if (options.denyConsent) {
    const abort = /<a href="([^"]+\/abort)">Deny<\/a>/.exec(html)?.[1] ?? '';
    const denied = await browser.follow(new URL(abort, t.identity.issuer).toString());
    return { status: denied.response.status, html: await denied.response.text(), url: denied.url };
  }
  const consented = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
    form: { csrf: formValue(html, 'csrf') },
  });
  return { status: consented.response.status, html: await consented.response.text(), url: consented.url };
}
