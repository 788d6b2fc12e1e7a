import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { UnsecuredJWT, base64url } from 'jose';
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { FakeIssuer } from './testing/fake-issuer.js';
import { bearerGuard, principalOf, type ErrorDetailLevel } from './bearer-guard.js';
import { TokenValidationError } from './token-errors.js';
import { TokenValidator, type TokenValidatorOptions } from './token-validator.js';

const issuer = new FakeIssuer();
beforeAll(async () => {
  await issuer.start();
  await issuer.addKey('k1');
});
afterAll(async () => issuer.stop());
beforeEach(() => {
  issuer.down = false;
  issuer.introspectionDelayMs = 0;
});

const validator = (options: Partial<TokenValidatorOptions> = {}) =>
  new TokenValidator({
    issuer: issuer.url,
    audience: 'https://kms.example',
    revocation: { auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 's3cret' } },
    ...options,
  });

async function failure(attempt: Promise<unknown>): Promise<TokenValidationError> {
  const error = await attempt.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TokenValidationError);
  return error as TokenValidationError;
}

describe('token validator', () => {
  it('returns a typed principal with scopes, tenancy, roles, standard and custom claims', async () => {
    const token = await issuer.token({
      sub: 'user-1',
      scope: 'kms:encrypt,kms:read',
      tenant_id: '7d3c2a1b-0e9f-4a8b-9c7d-6e5f4a3b2c1d',
      tenant_ids: ['11111111-2222-4333-8444-555555555555'],
      roles: ['operator'],
      email: 'a@example.com',
      department: 'payments',
    });
    const principal = await validator().validate(token);
    expect(principal).toMatchObject({
      subject: 'user-1',
      clientId: 'kms-service',
      scopes: ['kms:encrypt', 'kms:read'],
      tenantId: '7d3c2a1b-0e9f-4a8b-9c7d-6e5f4a3b2c1d',
      tenantIds: ['7d3c2a1b-0e9f-4a8b-9c7d-6e5f4a3b2c1d', '11111111-2222-4333-8444-555555555555'],
      roles: ['operator'],
      issuer: issuer.url,
      audience: ['https://kms.example'],
      custom: { department: 'payments' },
    });
    expect(principal.claims.email).toBe('a@example.com');
  });

  it('names the actor of a delegated token (RFC 8693 act), the current one when nested', async () => {
    const direct = await validator().validate(await issuer.token({ sub: 'user-1' }));
    expect(direct.actor).toBeUndefined();
    const delegated = await validator().validate(
      await issuer.token({ sub: 'user-1', act: { sub: 'kms-service', act: { sub: 'gateway' } } }),
    );
    expect(delegated).toMatchObject({ subject: 'user-1', actor: 'kms-service', custom: {} });
    expect(delegated.claims.act).toEqual({ sub: 'kms-service', act: { sub: 'gateway' } });
    // Not an RFC 8693 actor: no actor.
    expect((await validator().validate(await issuer.token({ sub: 'user-1', act: 'kms-service' }))).actor).toBe(
      undefined,
    );
  });

  it('refuses a missing or malformed token', async () => {
    expect((await failure(validator().validate(undefined))).code).toBe('missing_token');
    expect((await failure(validator().validate('not-a-jwt'))).code).toBe('invalid_token');
    expect((await failure(validator().validate('a.b.c'))).code).toBe('invalid_token');
  });

  it('refuses an expired token beyond the clock tolerance and accepts one within it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await issuer.token({ iat: now - 1000, exp: now - 60 });
    const error = await failure(validator().validate(expired));
    expect([error.code, error.status, error.details.claim]).toEqual(['token_expired', 401, 'exp']);
    const justExpired = await issuer.token({ iat: now - 1000, exp: now - 10 });
    await expect(validator().validate(justExpired)).resolves.toBeDefined();
    await expect(failure(validator({ clockToleranceSeconds: 0 }).validate(justExpired))).resolves.toMatchObject({
      code: 'token_expired',
    });
  });

  it('refuses a token that is not valid yet', async () => {
    const token = await issuer.token({ nbf: Math.floor(Date.now() / 1000) + 600 });
    const error = await failure(validator().validate(token));
    expect([error.code, error.details.claim]).toEqual(['invalid_token', 'nbf']);
  });

  it('refuses another issuer and another audience', async () => {
    expect((await failure(validator().validate(await issuer.token({ iss: 'https://evil.example' })))).code).toBe(
      'invalid_issuer',
    );
    expect((await failure(validator().validate(await issuer.token({ aud: 'https://other.example' })))).code).toBe(
      'invalid_audience',
    );
    await expect(
      validator({ audience: ['https://a.example', 'https://kms.example'] }).validate(await issuer.token()),
    ).resolves.toBeDefined();
  });

  it('refuses a bad signature and a token that is not an access token (typ)', async () => {
    const [header, payload] = (await issuer.token()).split('.');
    const other = (await issuer.token({ sub: 'someone-else' })).split('.')[2];
    expect((await failure(validator().validate(`${header}.${payload}.${other}`))).code).toBe('invalid_signature');
    const idToken = await issuer.token({}, { typ: 'JWT' });
    const error = await failure(validator().validate(idToken));
    expect([error.code, error.details.claim]).toEqual(['invalid_token', 'typ']);
  });

  it('refuses alg none and HS256 signed with the public key as the secret', async () => {
    const unsigned = new UnsecuredJWT({ sub: 'x', scope: 'kms:admin' })
      .setIssuer(issuer.url)
      .setAudience('https://kms.example')
      .setExpirationTime('1h')
      .encode();
    expect((await failure(validator().validate(unsigned))).code).toBe('invalid_token');
    // The classic key-confusion forgery: HMAC with the issuer's public key bytes as the secret.
    const pem = createPublicKey({ key: issuer.keys[0]!.publicJwk as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const head = base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' }));
    const body = base64url.encode(
      JSON.stringify({
        iss: issuer.url,
        aud: 'https://kms.example',
        sub: 'x',
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
    );
    const mac = createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
    const error = await failure(validator().validate(`${head}.${body}.${mac}`));
    expect([error.code, error.details.claim]).toEqual(['invalid_token', 'alg']);
    expect((await failure(validator({ algorithms: ['HS256', 'ES256'] }).validate(`${head}.${body}.${mac}`))).code).toBe(
      'invalid_token',
    );
  });

  it('fetches the JWKS once for many tokens within the TTL, and refetches once for an unknown kid', async () => {
    const checker = validator({ jwksCooldownMs: 60_000 });
    const before = issuer.jwksFetches;
    await Promise.all(Array.from({ length: 20 }, async () => checker.validate(await issuer.token())));
    expect(issuer.jwksFetches - before).toBe(1);
    // A key the issuer rotated in after the cache filled: one refetch finds it.
    await issuer.addKey('k2');
    await expect(checker.validate(await issuer.token())).resolves.toBeDefined();
    expect(issuer.jwksFetches - before).toBe(2);
    // An unknown kid within the cooldown: refused without another fetch.
    const error = await failure(checker.validate(await issuer.token({}, { kid: 'nobody' })));
    expect([error.code, error.details.claim]).toEqual(['invalid_signature', 'kid']);
    expect(issuer.jwksFetches - before).toBe(2);
    expect(checker.jwks.fetches).toBe(2);
  });

  it('keeps validating with cached keys when the issuer is down, and fails closed for revocation checks', async () => {
    let clock = Date.now();
    const checker = validator({ jwksCacheTtlMs: 1000, now: () => clock });
    const token = await issuer.token();
    await checker.validate(token);
    issuer.down = true;
    clock += 5000;
    await expect(checker.validate(token)).resolves.toBeDefined();
    const closed = await failure(checker.validate(token, { sensitive: true }));
    expect([closed.code, closed.status]).toEqual(['identity_unavailable', 503]);
    await expect(checker.jwks.ready()).rejects.toThrow();
    const fresh = validator();
    expect((await failure(fresh.validate(token))).code).toBe('identity_unavailable');
  });

  it('answers identity_unavailable, not invalid_signature, for a key it has not seen while the issuer is down', async () => {
    let clock = Date.now();
    const checker = validator({ now: () => clock });
    await checker.validate(await issuer.token());
    // Another instance of the issuer rotated; this validator has not fetched the new key, and the issuer is down.
    await issuer.addKey(`rotated-${clock}`);
    const rotated = await issuer.token();
    issuer.down = true;
    const unknown = await failure(checker.validate(rotated));
    expect([unknown.code, unknown.status]).toEqual(['identity_unavailable', 503]);
    // Within the cooldown, too (no new fetch is tried).
    expect((await failure(checker.validate(rotated))).code).toBe('identity_unavailable');
    // Once the issuer is back (and the cooldown over), the key is fetched and the token is valid.
    issuer.down = false;
    clock += 60_000;
    await expect(checker.validate(rotated)).resolves.toBeDefined();
  });

  it('verifies a token once while it is valid, by the whole token, and never past exp or the key cache', async () => {
    let clock = Date.now();
    const checker = validator({ now: () => clock, jwksCacheTtlMs: 120_000 });
    let lookups = 0;
    const getKey = checker.jwks.getKey;
    Object.defineProperty(checker.jwks, 'getKey', {
      value: (...args: Parameters<typeof getKey>) => {
        lookups += 1;
        return getKey(...args);
      },
    });
    const token = await issuer.token({ exp: Math.floor(clock / 1000) + 60 });
    await checker.validate(token);
    await checker.validate(token);
    expect(lookups).toBe(1);
    // The same claims (and jti) under a forged signature are verified, and refused.
    const [head, body] = token.split('.');
    const forged = `${head}.${body}.${base64url.encode(new Uint8Array(64))}`;
    expect((await failure(checker.validate(forged))).code).toBe('invalid_signature');
    expect(lookups).toBe(2);
    // Past exp and the clock tolerance, the remembered verification no longer counts.
    clock += 91_000;
    expect((await failure(checker.validate(token))).code).toBe('token_expired');
    // A long-lived token is verified again once the key cache's TTL has passed.
    const long = await issuer.token({ exp: Math.floor(clock / 1000) + 3600 });
    await checker.validate(long);
    clock += 60_000;
    await checker.validate(long);
    const before = lookups;
    clock += 61_000;
    await checker.validate(long);
    expect(lookups).toBe(before + 1);
  });

  it('checks revocation for sensitive operations only by default, sharing one call between concurrent checks', async () => {
    const checker = validator();
    const token = await issuer.token({ jti: 'shared-jti' });
    const before = issuer.introspections;
    await checker.validate(token);
    expect(issuer.introspections).toBe(before);
    issuer.introspectionDelayMs = 50;
    await Promise.all(Array.from({ length: 10 }, () => checker.validate(token, { sensitive: true })));
    expect(issuer.introspections).toBe(before + 1);
    expect(issuer.lastIntrospectionAuth).toBe(`Basic ${Buffer.from('kms:s3cret').toString('base64')}`);
    issuer.revoked.add('shared-jti');
    const error = await failure(checker.validate(token, { sensitive: true }));
    expect([error.code, error.status]).toEqual(['token_revoked', 401]);
    await expect(checker.validate(token)).resolves.toBeDefined();
  });

  it('introspects every request, or at most once per interval by jti', async () => {
    const every = validator({ revocation: { mode: 'every-request' } });
    const token = await issuer.token();
    let before = issuer.introspections;
    await every.validate(token);
    await every.validate(token);
    expect(issuer.introspections - before).toBe(2);

    let clock = Date.now();
    const interval = validator({
      now: () => clock,
      revocation: {
        mode: 'interval',
        intervalMs: 1000,
        auth: { method: 'client_secret_post', clientId: 'kms', clientSecret: 'x' },
      },
    });
    const revocable = await issuer.token({ jti: 'interval-jti' });
    before = issuer.introspections;
    await interval.validate(revocable);
    issuer.revoked.add('interval-jti');
    await interval.validate(revocable);
    expect(issuer.introspections - before).toBe(1);
    expect(issuer.lastIntrospectionAuth).toBe('post:kms');
    clock += 1001;
    expect((await failure(interval.validate(revocable))).code).toBe('token_revoked');
  });
});

describe('introspection client authentication', () => {
  it('sends client_id for tls_client_auth (the fetch presents the certificate) and ApiKey for API keys', async () => {
    const token = await issuer.token();
    await validator({ revocation: { auth: { method: 'tls_client_auth', clientId: 'kms-mtls' } } }).validate(token, {
      sensitive: true,
    });
    expect(issuer.lastIntrospectionAuth).toBe('post:kms-mtls');
    await validator({ revocation: { auth: { method: 'api_key', apiKey: 'key-1.secret' } } }).validate(token, {
      sensitive: true,
    });
    expect(issuer.lastIntrospectionAuth).toBe('ApiKey key-1.secret');
    const before = issuer.introspections;
    await validator({ revocation: { mode: 'off' } }).validate(token, { sensitive: true });
    expect(issuer.introspections).toBe(before);
  });
});

describe('bearer guard', () => {
  const app = (errorDetail: ErrorDetailLevel) => {
    const guard = bearerGuard({
      validator: validator(),
      realm: 'kms',
      errorDetail,
      implications: { 'kms:write': ['kms:encrypt', 'kms:decrypt'] },
    });
    return express()
      .post('/encrypt', guard.require('kms:encrypt', { sensitive: true }), (req, res) => {
        res.json({ sub: principalOf(req)?.subject });
      })
      .post('/sign', guard.require('kms:sign'), (_req, res) => void res.end());
  };

  it('passes a token whose coarse scope implies the needed one, and attaches the principal', async () => {
    const token = await issuer.token({ scope: 'kms:write', sub: 'svc' });
    const res = await request(app('standard')).post('/encrypt').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sub: 'svc' });
  });

  it('answers 401 with the RFC 6750 challenge, at each detail level', async () => {
    const missing = await request(app('standard')).post('/encrypt');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="kms"');
    expect(missing.headers['content-type']).toContain('application/problem+json');
    expect(missing.body).toMatchObject({ status: 401, code: 'missing_token', title: 'Unauthorized' });

    const now = Math.floor(Date.now() / 1000);
    const expired = await issuer.token({ iat: now - 1000, exp: now - 100 });
    const minimal = await request(app('minimal')).post('/encrypt').set('Authorization', `Bearer ${expired}`);
    expect(minimal.headers['www-authenticate']).toBe('Bearer realm="kms", error="invalid_token"');
    expect(minimal.body).toEqual({
      type: 'https://cryptoutil.dev/problems/token_expired',
      title: 'Unauthorized',
      status: 401,
      code: 'token_expired',
      error: 'invalid_token',
    });
    const standard = await request(app('standard')).post('/encrypt').set('Authorization', `bearer ${expired}`);
    expect(standard.headers['www-authenticate']).toBe(
      'Bearer realm="kms", error="invalid_token", error_description="The token has expired."',
    );
    expect(standard.body).toMatchObject({
      detail: 'The token has expired.',
      error_description: 'The token has expired.',
      instance: '/encrypt',
    });
    expect(standard.body.claim).toBeUndefined();
    const verbose = await request(app('verbose')).post('/encrypt').set('Authorization', `Bearer ${expired}`);
    expect(verbose.body.claim).toBe('exp');
    expect(JSON.stringify([minimal.body, standard.body, verbose.body])).not.toContain(expired);
  });

  it('answers 403 insufficient_scope naming the scope, with provided scopes only when verbose', async () => {
    const token = await issuer.token({ scope: 'kms:write' });
    const standard = await request(app('standard')).post('/sign').set('Authorization', `Bearer ${token}`);
    expect(standard.status).toBe(403);
    expect(standard.headers['www-authenticate']).toBe(
      'Bearer realm="kms", error="insufficient_scope", error_description="The caller lacks the scope kms:sign.", scope="kms:sign"',
    );
    expect(standard.body).toMatchObject({ code: 'insufficient_scope', required_scope: 'kms:sign' });
    expect(standard.body.provided_scopes).toBeUndefined();
    const verbose = await request(app('verbose')).post('/sign').set('Authorization', `Bearer ${token}`);
    expect(verbose.body.provided_scopes).toEqual(['kms:write', 'kms:encrypt', 'kms:decrypt']);
  });

  it('answers 503 identity_unavailable without a challenge when a sensitive check cannot be made', async () => {
    const token = await issuer.token();
    issuer.down = true;
    const res = await request(app('standard')).post('/encrypt').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(503);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body.code).toBe('identity_unavailable');
  });
});
