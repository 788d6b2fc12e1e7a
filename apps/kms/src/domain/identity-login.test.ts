import { describe, expect, it } from '@jest/globals';
import { DEFAULT_RETURN_TO, safeReturnTo } from './identity-login.js';

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
