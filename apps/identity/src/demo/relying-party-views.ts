/** The demo relying party's single page: where you are in the flow, every value escaped, no scripts. */
import { escapeHtml } from '../interactions/views.js';

export interface RpView {
  csrf: string;
  idClaims?: Record<string, unknown>;
  accessClaims?: Record<string, unknown>;
  result?: { steps: string[]; jwe?: string; plaintext?: string };
}

const json = (value: unknown) => `<pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;

export function renderRpPage(view: RpView): string {
  const signedIn = view.accessClaims !== undefined;
  const body = signedIn
    ? `<h2>2. Your tokens</h2>
<p>ID token claims (who you are):</p>
${json(view.idClaims ?? {})}
<p>Access token claims (what the KMS will check: <code>aud</code>, <code>scope</code>, expiry, and
<code>cnf.jkt</code>: the token is DPoP-bound to a key only this page holds, so a copy of it is useless alone):</p>
${json(view.accessClaims)}
<h2>3. Call the KMS with the access token and a DPoP proof</h2>
<form method="post" action="/demo/rp/encrypt">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<label for="text">Text to encrypt</label>
<input id="text" name="text" value="hello from the demo" required>
<button type="submit">Encrypt, then decrypt</button>
</form>
${
  view.result
    ? `<h2>4. Result</h2>
<ul>${view.result.steps.map((step) => `<li>${escapeHtml(step)}</li>`).join('')}</ul>
${view.result.jwe ? `<p>JWE from the KMS:</p><pre class="wrap">${escapeHtml(view.result.jwe)}</pre>` : ''}
${view.result.plaintext !== undefined ? `<p>Decrypted: <strong id="plaintext">${escapeHtml(view.result.plaintext)}</strong></p>` : ''}`
    : ''
}
<p><a href="/demo/rp/start">Sign in again</a></p>`
    : `<p>This page plays an application that uses Identity to sign people in and the KMS to protect data.</p>
<h2>1. Sign in</h2>
<p>Use <code>demo-user</code> / <code>demo-user-password</code> (demo-only credentials).</p>
<p><a href="/demo/rp/start">Sign in with cryptoutil Identity</a></p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo relying party · cryptoutil</title>
<link rel="stylesheet" href="/assets/cryptoutil.css">
</head>
<body>
<main class="card wide">
<h1>Demo relying party</h1>
${body}
</main>
</body>
</html>`;
}
