import { describe, expect, it } from '@jest/globals';
import { basicCredentials } from './basic-auth.js';

const basic = (pair: string) => `Basic ${Buffer.from(pair).toString('base64')}`;

describe('HTTP Basic credentials', () => {
  it('splits at the first colon, keeps the password whole, and reads the scheme in any case', () => {
    expect(basicCredentials(basic('ops:pa:ss'))).toEqual({ user: 'ops', password: 'pa:ss' });
    expect(basicCredentials(`basic ${Buffer.from('a:b').toString('base64')}`)).toEqual({ user: 'a', password: 'b' });
  });

  it('is no credential for another scheme, bad base64 or a value without a colon', () => {
    expect(basicCredentials(undefined)).toBeUndefined();
    expect(basicCredentials('Bearer abc')).toBeUndefined();
    expect(basicCredentials('Basic not base64!')).toBeUndefined();
    expect(basicCredentials(basic('no-colon'))).toBeUndefined();
  });

  it('decodes form-encoded OAuth client credentials, and a malformed encoding is no credential', () => {
    expect(basicCredentials(basic('my%20client:s%3Acret'), { formEncoded: true })).toEqual({
      user: 'my client',
      password: 's:cret',
    });
    expect(basicCredentials(basic('my%20client:x'))).toEqual({ user: 'my%20client', password: 'x' });
    expect(basicCredentials(basic('%zz:x'), { formEncoded: true })).toBeUndefined();
  });
});
