import { describe, expect, it } from '@jest/globals';
import { AppError } from '@cryptoutil/infra';
import { DEFAULT_RETURN_TO, IdentityLogin, safeReturnTo } from './identity-login.js';
import type { SessionStore } from './session.js';

describe('the return path after a sign-in through Identity', () => {
  it('keeps a path of this KMS', () => {
    expect(safeReturnTo('/ui/')).toBe('/ui/');
    expect(safeReturnTo('/ui/#keys/0192')).toBe('/ui/#keys/0192');
  });

  it('never leads to another origin or to something that is not a path (no open redirect)', () => {
    for (const hostile of [
      'https://evil.example/',
      '//evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
      'ui/',
      '/ui/\nSet-Cookie: x=y',
      `/${'a'.repeat(600)}`,
      ['/ui/'],
      undefined,
    ]) {
      expect(safeReturnTo(hostile)).toBe(DEFAULT_RETURN_TO);
    }
  });
});

describe('a sign-in through Identity while Identity cannot be reached', () => {
  it('is a 503 identity_unavailable with Retry-After, not a server error, and tries discovery again next time', async () => {
    let calls = 0;
    const login = new IdentityLogin({
      db: undefined as never,
      sessions: undefined as unknown as SessionStore,
      issuer: 'https://identity.invalid',
      clientId: 'kms-console',
      clientSecret: 'kms-console-secret-0123456789',
      scope: 'openid',
      redirectUri: 'https://kms.invalid/browser/api/v1/identity/callback',
      fetch: (async () => {
        calls += 1;
        throw new TypeError('fetch failed');
      }) as typeof fetch,
      principalOf: async () => ({ subject: 'x', scopes: [], tenants: [] }),
      verifyLogoutToken: async () => ({ jti: 'x', iat: 0 }),
    });
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const error = await login.start('/ui/').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ status: 503, code: 'identity_unavailable', headers: { 'Retry-After': '5' } });
      expect(calls).toBe(attempt);
    }
  });
});
