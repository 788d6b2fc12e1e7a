import { describe, expect, it } from '@jest/globals';
import { pbkdf2Sync } from 'node:crypto';
import {
  PBKDF2_DEFAULT_ITERATIONS,
  PasswordHashFormatError,
  hashPassword,
  isPasswordHash,
  parsePasswordHash,
  verifyPassword,
} from './password-hash.js';

describe('password hashes', () => {
  it('uses PBKDF2-HMAC-SHA256 with 600,000 iterations, 32-byte salt and 32-byte hash by default', async () => {
    const encoded = await hashPassword('demo-user-password');
    const parsed = parsePasswordHash(encoded);
    expect(parsed.iterations).toBe(PBKDF2_DEFAULT_ITERATIONS);
    expect(PBKDF2_DEFAULT_ITERATIONS).toBe(600_000);
    expect(parsed.salt).toHaveLength(32);
    expect(parsed.hash).toHaveLength(32);
    // An independent derivation of the same parameters gives the same bytes.
    expect(pbkdf2Sync('demo-user-password', parsed.salt, parsed.iterations, 32, 'sha256')).toEqual(parsed.hash);
    expect(await verifyPassword(encoded, 'demo-user-password')).toBe(true);
    expect(await verifyPassword(encoded, 'demo-user-passwore')).toBe(false);
  });

  it('salts every hash and keeps the iterations with it', async () => {
    const a = await hashPassword('same', 1000);
    const b = await hashPassword('same', 1000);
    expect(a).not.toBe(b);
    expect(a.startsWith('$pbkdf2-sha256$i=1000$')).toBe(true);
    expect(await verifyPassword(b, 'same')).toBe(true);
  });

  it('recognizes the format', async () => {
    expect(isPasswordHash(await hashPassword('x', 1000))).toBe(true);
    expect(isPasswordHash('plaintext')).toBe(false);
  });

  it('treats composed and decomposed Unicode the same', async () => {
    const encoded = await hashPassword('caf\u00e9', 1000);
    expect(await verifyPassword(encoded, 'cafe\u0301')).toBe(true);
  });

  it.each([
    '',
    'bcrypt$2b$10$abc',
    '$pbkdf2-sha256$i=0$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAA==',
    '$pbkdf2-sha256$i=10$AAAA$AAAA',
  ])('refuses a malformed hash %p', async (encoded) => {
    await expect(verifyPassword(encoded, 'x')).rejects.toBeInstanceOf(PasswordHashFormatError);
  });
});
