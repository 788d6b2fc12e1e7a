/**
 * The device authorization pages (RFC 8628 §3.3) in the look of the sign-in pages: enter the code shown
 * on the device, check it and the asking client, then the usual sign-in and consent, then done. Plain
 * server-rendered HTML under the same CSP (no script, no inline style); every form carries oidc-provider's
 * `xsrf` value, which it checks against the session.
 */
import { escapeHtml, page } from './views.js';

export interface UserCodeView {
  /** Where the form posts (the provider's code verification endpoint). */
  action: string;
  xsrf: string;
  /** Pre-filled (from `verification_uri_complete`, or the code that was refused). */
  userCode?: string;
  error?: string;
}

const hidden = (name: string, value: string) =>
  `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;

export function renderUserCodePage(view: UserCodeView): string {
  return page(
    'Connect a device',
    `<p>Enter the code shown on your device or command line.</p>
${view.error ? `<p class="error" role="alert">${escapeHtml(view.error)}</p>` : ''}
<form method="post" action="${escapeHtml(view.action)}" autocomplete="off">
${hidden('xsrf', view.xsrf)}
<label for="user_code">Code</label>
<input id="user_code" name="user_code" autocapitalize="characters" spellcheck="false" maxlength="32" required aria-describedby="user_code_hint" value="${escapeHtml(view.userCode ?? '')}">
<p id="user_code_hint">Eight letters, such as <code>BDFG-HJKL</code>.</p>
<button type="submit">Continue</button>
</form>`,
  );
}

export interface UserCodeConfirmView {
  action: string;
  xsrf: string;
  userCode: string;
  clientName: string;
}

/** The code and who asks, to compare with the device before signing in (RFC 8628 §5.4, remote phishing). */
export function renderUserCodeConfirmPage(view: UserCodeConfirmView): string {
  return page(
    'Connect this device?',
    `<p><strong>${escapeHtml(view.clientName)}</strong> wants to sign in on a device.</p>
<p>Continue only if your device shows this code: <code>${escapeHtml(view.userCode)}</code></p>
<form method="post" action="${escapeHtml(view.action)}">
${hidden('xsrf', view.xsrf)}
${hidden('user_code', view.userCode)}
<button type="submit" name="confirm" value="yes">Continue</button>
<button type="submit" name="abort" value="yes" class="secondary">Deny</button>
</form>`,
  );
}

export function renderDeviceConnectedPage(): string {
  return page('Device connected', '<p>You are signed in on your device. Return to it; you can close this window.</p>');
}

export function renderDeviceDeniedPage(): string {
  return page(
    'Device not connected',
    `<p role="status">The device was refused access. If that was a mistake, start again on the device.</p>
<p><a href="/device">Enter another code</a></p>`,
  );
}

export function renderTooManyCodesPage(retryAfterSeconds: number): string {
  return page(
    'Too many attempts',
    `<p class="error" role="alert">Too many codes were entered from your network. Wait ${retryAfterSeconds} seconds, then try again.</p>
<p><a href="/device">Enter the code</a></p>`,
  );
}

/** A code form posted without the browser session it was made for (its xsrf value lives there). */
export function renderDeviceFormExpiredPage(): string {
  return page(
    'Connect a device',
    `<p class="error" role="alert">The form expired or did not come from this page.</p>
<p><a href="/device">Enter the code again</a></p>`,
  );
}
