/**
 * Security headers on every kind of response of both products, as the processes serve them (issue #10):
 * successes, errors (401, 404, 413, OAuth errors), HTML pages, static assets and both admin listeners.
 * Every one has HSTS, `nosniff`, no `X-Powered-By`, and a frame ban; every HTML page has a CSP that allows
 * no inline script; token and error answers are not cached.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describe } from '@jest/globals';
import { kmsServiceToken, startStack, type Stack } from './stack.js';

interface Seen {
  label: string;
  status: number;
  headers: Headers;
}

describe('security headers on every response of both products', () => {
  let stack: Stack;
  const seen: Seen[] = [];

  const visit = async (label: string, url: string, init: RequestInit = {}) => {
    const res = await stack.fetch(url, { redirect: 'manual', ...init });
    await res.arrayBuffer();
    seen.push({ label, status: res.status, headers: res.headers });
    return res;
  };

  beforeAll(async () => {
    stack = await startStack({ url: 'sqlite' }, { kmsFlags: ['--demo'] });
    const kms = stack.kms.publicUrl;
    const identity = stack.identity.publicUrl;
    const token = await kmsServiceToken(stack, 'kms:read');
    const authorize = new URL(`${identity}/auth`);
    for (const [key, value] of Object.entries({
      client_id: 'demo-spa',
      response_type: 'code',
      redirect_uri: 'https://127.0.0.1:8082/demo/rp/callback', // as registered by the demo seed
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(key, value);
    }
    await visit('KMS list without credentials (401)', `${kms}/service/api/v1/elastickeys`);
    await visit('KMS list with a token (200)', `${kms}/service/api/v1/elastickeys`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await visit('KMS unknown path (404)', `${kms}/nothing-here`);
    await visit('KMS oversized body (413)', `${kms}/service/api/v1/elastickey`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: `"${'x'.repeat(1024 * 1024 + 10)}"`,
    });
    await visit('KMS console (HTML)', `${kms}/ui/`);
    await visit('KMS Swagger UI (HTML)', `${kms}/ui/swagger/`);
    await visit('KMS admin readiness', `${stack.kms.adminUrl}/admin/v1/readyz`);
    await visit('Identity discovery', `${identity}/.well-known/openid-configuration`);
    await visit('Identity JWKS', `${identity}/jwks`);
    await visit('Identity token error (OAuth JSON)', `${identity}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password',
    });
    await visit('Identity unknown path (404)', `${identity}/nothing-here`);
    const redirect = await visit('Identity authorization (redirect)', authorize.toString());
    const login = redirect.headers.get('location');
    expect(login).toMatch(/\/interaction\//);
    const cookie = redirect.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    await visit('Identity login page (HTML)', new URL(login!, identity).toString(), { headers: { cookie } });
    await visit('Identity error page (HTML)', `${identity}/auth?client_id=no-such-client&response_type=code`);
    await visit('Identity logout page (HTML)', `${identity}/session/end`);
    await visit('Identity device code page (HTML)', `${identity}/device`);
    await visit('Identity device code refused (HTML)', `${identity}/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'user_code=BBBB-BBBB&xsrf=forged',
    });
    await visit('Identity shared stylesheet', `${identity}/assets/cryptoutil.css`);
    await visit('Identity admin liveness', `${stack.identity.adminUrl}/admin/v1/livez`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
  }, 120_000);
  afterAll(async () => stack?.stop());

  it('sends HSTS, nosniff and a frame ban, and never X-Powered-By, on every response', () => {
    expect(seen.length).toBe(19);
    const missing = seen.flatMap(({ label, status, headers }) => {
      const problems: string[] = [];
      if (!/max-age=\d{7,}/.test(headers.get('strict-transport-security') ?? '')) problems.push('HSTS');
      if (headers.get('x-content-type-options') !== 'nosniff') problems.push('nosniff');
      if (headers.has('x-powered-by')) problems.push('x-powered-by present');
      const csp = headers.get('content-security-policy') ?? '';
      if (headers.get('x-frame-options') === null && !/frame-ancestors 'none'/.test(csp)) problems.push('frame ban');
      return problems.map((problem) => `${label} (${status}): ${problem}`);
    });
    expect(missing).toEqual([]);
  });

  it('gives every HTML page a CSP without inline script, and keeps tokens and errors out of caches', () => {
    const html = seen.filter(({ headers }) => headers.get('content-type')?.startsWith('text/html'));
    expect(html.map(({ label }) => label)).toEqual(
      expect.arrayContaining([
        'KMS console (HTML)',
        'Identity login page (HTML)',
        'Identity logout page (HTML)',
        'Identity device code page (HTML)',
        'Identity device code refused (HTML)',
      ]),
    );
    for (const { label, headers } of html) {
      const csp = headers.get('content-security-policy') ?? '';
      const scripts = /script-src ([^;]*)/.exec(csp)?.[1] ?? /default-src ([^;]*)/.exec(csp)?.[1] ?? '';
      expect([label, csp.length > 0, /'unsafe-inline'|\*/.test(scripts)]).toEqual([label, true, false]);
    }
    const sensitive = seen.filter(({ label }) =>
      /^KMS (list|oversized)|token error|login page|device code page/.test(label),
    );
    expect(sensitive).toHaveLength(6);
    for (const { label, status, headers } of sensitive) {
      expect([label, status, headers.get('cache-control')]).toEqual([label, status, expect.stringMatching(/no-store/)]);
    }
  });
});
