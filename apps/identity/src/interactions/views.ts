/**
 * Server-rendered pages: plain HTML, every value escaped, no scripts and no inline style (the CSP forbids
 * both), labels on every field, the shared cryptoutil stylesheet. Kept small so a reader sees the whole UI
 * in one file.
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => ENTITIES[char] ?? char);
}

/** The layout every interaction page shares. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · cryptoutil Identity</title>
<link rel="stylesheet" href="/assets/cryptoutil.css">
</head>
<body>
<main class="card narrow">
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>`;
}

export interface LoginView {
  uid: string;
  clientName: string;
  csrf: string;
  error?: string;
  username?: string;
  /** The "Sign in with a passkey" form, already rendered and escaped (passkey-views.ts). */
  passkeyForm?: string;
}

export function renderLoginPage(view: LoginView): string {
  return page(
    'Sign in',
    `<p>to continue to <strong>${escapeHtml(view.clientName)}</strong></p>
${view.error ? `<p class="error" role="alert">${escapeHtml(view.error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(view.uid)}/login" autocomplete="on">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required value="${escapeHtml(view.username ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${view.passkeyForm ?? ''}
<p><a href="/interaction/${escapeHtml(view.uid)}/abort">Cancel</a></p>`,
  );
}

export interface TotpView {
  uid: string;
  csrf: string;
  error?: string;
  /** While enrolling: the QR code to scan and the same secret to type in. */
  enrolment?: { qrDataUri: string; secret: string };
  /** The user also has a passkey: offer it instead. */
  passkeyHref?: string;
}

export function renderTotpPage(view: TotpView): string {
  const enrol = view.enrolment
    ? `<p>Scan this code with an authenticator app, then enter the six digits it shows.</p>
<img src="${escapeHtml(view.enrolment.qrDataUri)}" alt="QR code for your authenticator app" width="200" height="200">
<p>Or enter this key by hand: <code>${escapeHtml(view.enrolment.secret)}</code></p>`
    : '<p>Enter the six-digit code from your authenticator app.</p>';
  return page(
    view.enrolment ? 'Set up two-step verification' : 'Two-step verification',
    `${enrol}
${view.error ? `<p class="error" role="alert">${escapeHtml(view.error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(view.uid)}/totp" autocomplete="off">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<label for="code">Code</label>
<input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required>
<button type="submit">Verify</button>
</form>
${view.passkeyHref ? `<p><a href="${escapeHtml(view.passkeyHref)}">Use a passkey instead</a></p>` : ''}
<p><a href="/interaction/${escapeHtml(view.uid)}/abort">Cancel</a></p>`,
  );
}

export interface ConsentView {
  uid: string;
  clientName: string;
  csrf: string;
  scopes: string[];
}

export function renderConsentPage(view: ConsentView): string {
  const items = view.scopes.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join('\n');
  return page(
    'Allow access?',
    `<p><strong>${escapeHtml(view.clientName)}</strong> asks for:</p>
<ul>
${items}
</ul>
<form method="post" action="/interaction/${escapeHtml(view.uid)}/confirm">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<button type="submit">Allow</button>
</form>
<p><a href="/interaction/${escapeHtml(view.uid)}/abort">Deny</a></p>`,
  );
}

export function renderErrorPage(error: string, description?: string): string {
  return page(
    'Something went wrong',
    `<p class="error" role="alert"><strong>${escapeHtml(error)}</strong>${description ? `: ${escapeHtml(description)}` : ''}</p>
<p>Return to the application and try again.</p>`,
  );
}

/**
 * RP-initiated logout: `form` is the provider's own form (`id="op.logoutForm"`, its CSRF token inside);
 * the two buttons submit it, with `logout=yes` or without.
 */
export function renderLogoutPage(form: string): string {
  return page(
    'Sign out?',
    `<p>Do you want to sign out of cryptoutil Identity?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
  );
}

export function renderSignedOutPage(): string {
  return page('Signed out', '<p>You are signed out. You can close this window.</p>');
}
