import { describe, expect, it } from '@jest/globals';
import { pbkdf2Sync } from 'node:crypto';
import {
  PBKDF2_DEFAULT_ITERATIONS,
  PasswordHashFormatError,
  hashPassword,
  isPasswordHash,
  parsePasswordHash,
  pbkdf2Concurrency,
  verifiedSecretCache,
  verifyDecoyPassword,
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

describe('verified secret cache', () => {
  it('runs the full check once per hash and secret within the TTL, never caches a failure, and is bounded', async () => {
    let clock = 0;
    const calls: string[] = [];
    const verify = verifiedSecretCache({
      ttlMs: 1000,
      maxEntries: 2,
      now: () => clock,
      verify: async (encoded, secret) => {
        calls.push(`${encoded}:${secret}`);
        return secret === 'right';
      },
    });
    expect(await verify('h1', 'right')).toBe(true);
    expect(await verify('h1', 'right')).toBe(true);
    expect(calls).toEqual(['h1:right']);
    expect(await verify('h1', 'wrong')).toBe(false);
    expect(await verify('h1', 'wrong')).toBe(false);
    expect(calls).toHaveLength(3);
    // A rotated secret means a new stored hash: a separate entry.
    expect(await verify('h2', 'right')).toBe(true);
    expect(calls).toHaveLength(4);
    clock = 1001;
    expect(await verify('h1', 'right')).toBe(true);
    expect(calls).toHaveLength(5);
    expect(await verify('h3', 'right')).toBe(true);
    expect(await verify('h2', 'right')).toBe(true);
    expect(calls).toHaveLength(7);
  });

  it('checks with PBKDF2 by default', async () => {
    const encoded = await hashPassword('client-secret', 1000);
    const verify = verifiedSecretCache();
    expect(await verify(encoded, 'client-secret')).toBe(true);
    expect(await verify(encoded, 'client-secreT')).toBe(false);
  });
});

describe('decoy verification', () => {
  it('is always false, whatever the password', async () => {
    expect(await verifyDecoyPassword('decoy-password-for-unknown-accounts')).toBe(false);
    expect(await verifyDecoyPassword('anything')).toBe(false);
  });
});

describe('PBKDF2 on the shared thread pool', () => {
  it('runs one per core and always leaves two pool threads free', () => {
    expect(pbkdf2Concurrency({}, 2)).toBe(2);
    expect(pbkdf2Concurrency({}, 16)).toBe(2); // default pool of 4
    expect(pbkdf2Concurrency({ UV_THREADPOOL_SIZE: '18' }, 16)).toBe(16);
    expect(pbkdf2Concurrency({ UV_THREADPOOL_SIZE: '2' }, 8)).toBe(1);
  });

  it('lets token signing (WebCrypto, same pool) finish while eight sign-ins are being checked', async () => {
    const hash = await hashPassword('a-password-0123', 200_000);
    const { privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const finished: string[] = [];
    const checks = Array.from({ length: 8 }, () =>
      verifyPassword(hash, 'a-password-0123').then(() => finished.push('pbkdf2')),
    );
    await new Promise((done) => setImmediate(done));
    const signed = crypto.subtle
      .sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, Buffer.from('token'))
      .then(() => finished.push('sign'));
    await Promise.all([...checks, signed]);
    // First come first served on the pool: without the limit the signature waits behind at least four.
    expect(finished.indexOf('sign')).toBeLessThan(2);
  });
});
