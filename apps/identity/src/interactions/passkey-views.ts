/**
 * The passkey pages and the login page's passkey form. Each ceremony is a plain form: `data-webauthn`
 * (`create` or `get`) and `data-options` (the JSON options, escaped) tell `/assets/passkey.js` what to ask
 * the browser for; the script puts the browser's answer in the hidden `response` field and submits. No
 * inline script: the page loads that one file from Identity's origin.
 */
import { escapeHtml, page } from './views.js';

export const PASSKEY_SCRIPT_PATH = '/assets/passkey.js';

interface CeremonyForm {
  action: string;
  csrf: string;
  mode: 'create' | 'get';
  options: object;
  button: string;
  buttonClass?: string;
}

function ceremonyForm(form: CeremonyForm): string {
  return `<form method="post" action="${escapeHtml(form.action)}" data-webauthn="${form.mode}" data-options="${escapeHtml(JSON.stringify(form.options))}">
<input type="hidden" name="csrf" value="${escapeHtml(form.csrf)}">
<input type="hidden" name="response" value="">
<button type="submit"${form.buttonClass ? ` class="${form.buttonClass}"` : ''}>${escapeHtml(form.button)}</button>
<p class="passkey-status" role="status" aria-live="polite"></p>
</form>
<noscript><p>Passkeys need JavaScript in this browser.</p></noscript>
<script src="${PASSKEY_SCRIPT_PATH}" defer></script>`;
}

/** The login page's second way in: a discoverable passkey, no username or password. */
export function renderPasswordlessForm(view: { uid: string; csrf: string; options: object }): string {
  return `<p>Or, without a password:</p>
${ceremonyForm({
  action: `/interaction/${view.uid}/passkey-login`,
  csrf: view.csrf,
  mode: 'get',
  options: view.options,
  button: 'Sign in with a passkey',
  buttonClass: 'secondary',
})}`;
}

export interface PasskeyView {
  uid: string;
  csrf: string;
  options: object;
  error?: string;
  /** The user also has a TOTP authenticator: offer it instead. */
  totpHref?: string;
}

function errorLine(error: string | undefined): string {
  return error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
}

/** The second factor: the passkey answers the challenge. */
export function renderPasskeyPage(view: PasskeyView): string {
  return page(
    'Use your passkey',
    `<p>Confirm it is you with the passkey you registered.</p>
${errorLine(view.error)}
${ceremonyForm({ action: `/interaction/${view.uid}/passkey`, csrf: view.csrf, mode: 'get', options: view.options, button: 'Use passkey' })}
${view.totpHref ? `<p><a href="${escapeHtml(view.totpHref)}">Use your authenticator app instead</a></p>` : ''}
<p><a href="/interaction/${escapeHtml(view.uid)}/abort">Cancel</a></p>`,
  );
}

/** Registration of a passkey an administrator required. */
export function renderPasskeyEnrolPage(view: PasskeyView): string {
  return page(
    'Add a passkey',
    `<p>Your account needs a passkey. Your device will ask you to create one (fingerprint, face, PIN or security key).</p>
${errorLine(view.error)}
${ceremonyForm({ action: `/interaction/${view.uid}/passkey/enrol`, csrf: view.csrf, mode: 'create', options: view.options, button: 'Add passkey' })}
<p><a href="/interaction/${escapeHtml(view.uid)}/abort">Cancel</a></p>`,
  );
}
