import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { TokenValidator, generateJwk, keySpecFor, parseKeyAlgorithm, publicJwk } from '@cryptoutil/jose-authority';
import { hashPassword } from '@cryptoutil/infra';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import type { Request } from 'express';
import { ACCESS_RULES, accessControl, operationOf } from '../src/api/access.js';
import { openApiDocument } from '../src/api/openapi.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { KMS_FINE_SCOPES, KMS_SCOPE_IMPLICATIONS } from '../src/domain/scopes.js';
import { AUTH_METHODS, createAuthenticator } from '../src/api/authentication.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, testTls, type TestKms } from './harness.js';

const AUDIENCE = 'https://kms.test';
const OPS_PASSWORD = 'ops-password-0123';
const API_KEY_SECRET = 'batch-secret-0123456789';
// Low iteration counts keep the test fast; the format and the check are the production ones.
let OPS_HASH: string;
let API_KEY_HASH: string;
const issuer = new FakeIssuer();
beforeAll(async () => {
  OPS_HASH = await hashPassword(OPS_PASSWORD, 1000);
  API_KEY_HASH = await hashPassword(API_KEY_SECRET, 1000);
  await issuer.start();
  await issuer.addKey('identity-key-1');
  issuer.audience = AUDIENCE;
});
afterAll(async () => issuer.stop());
beforeEach(() => {
  issuer.down = false;
});

describeEachDatabase('KMS access control with Identity tokens', (db) => {
  let kms: TestKms;
  let keyId: string;
  const bearer = async (scope: string, claims: Record<string, unknown> = {}) =>
    `Bearer ${await issuer.token({ scope, ...claims })}`;

  beforeAll(async () => {
    const validator = new TokenValidator({
      issuer: issuer.url,
      audience: AUDIENCE,
      revocation: { auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 'kms-secret-0123456789' } },
    });
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: '0b9c3e4a-5f61-4d2b-8a7c-9e0f1a2b3c4d',
            name: 'local',
            type: 'file',
            roles: [
              { name: 'reader', permissions: ['kms:read'] },
              { name: 'operator', permissions: ['kms:encrypt', 'kms:decrypt'], inherits: ['reader'] },
            ],
            users: [
              {
                id: '01a20f00-0000-7000-8000-000000000001',
                username: 'ops',
                password_hash: OPS_HASH,
                roles: ['operator'],
              },
              {
                id: '01a20f00-0000-7000-8000-000000000002',
                username: 'viewer',
                password_hash: OPS_HASH,
                roles: ['reader'],
              },
            ],
          },
        ],
      }),
      { demo: false },
    );
    const opened = await db.open(KMS_MIGRATIONS);
    const authenticate = createAuthenticator({
      methods: AUTH_METHODS,
      validator,
      login: createPasswordLogin({ realms, db: opened, lockout: { maxFailures: 3, lockoutMs: 60_000 } }),
      apiKeys: [{ id: 'batch', keyHash: API_KEY_HASH, scopes: ['kms:encrypt'] }],
      certificates: [{ commonName: 'batch-client', scopes: ['kms:read'] }],
    });
    kms = await startTestKms(opened, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic', 'ApiKey'] }),
    });
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', await bearer('kms:write'))
      .send({ name: uniquePrefix('access'), description: 'd', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    keyId = String(created.body.elastic_key_id);
  });

  it('answers 401 authentication_required offering every scheme when no credential is sent', async () => {
    const res = await kms.api('get', '/elastickeys');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="kms", Basic realm="kms", ApiKey realm="kms"');
    expect(res.body).toMatchObject({ code: 'authentication_required', status: 401 });
  });

  it('accepts realm users over HTTP Basic with the scopes of their roles (inherited too)', async () => {
    const ops = `Basic ${Buffer.from(`ops:${OPS_PASSWORD}`).toString('base64')}`;
    const viewer = `Basic ${Buffer.from(`viewer:${OPS_PASSWORD}`).toString('base64')}`;
    expect((await kms.api('get', `/elastickey/${keyId}`).set('Authorization', ops)).status).toBe(200);
    const jwe = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', ops)
      .type('text/plain')
      .send('x');
    expect(jwe.status).toBe(200);
    const refused = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', viewer)
      .type('text/plain')
      .send('x');
    expect([refused.status, refused.body.required_scope]).toEqual([403, 'kms:encrypt']);
    const create = await kms
      .api('post', '/elastickey')
      .set('Authorization', ops)
      .send({ name: 'n', description: 'd', algorithm: 'ES256' });
    expect([create.status, create.body.required_scope]).toEqual([403, 'kms:pool:create']);
  });

  it('slows and then locks a username after repeated wrong passwords, without saying whether it exists', async () => {
    const attempt = (username: string, password: string) =>
      kms
        .api('get', '/elastickeys')
        .set('Authorization', `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
    const unknown = await attempt(`nobody-${db.dialect}`, 'wrong-password');
    const wrong = await attempt('viewer', 'wrong-password');
    expect([unknown.status, wrong.status]).toEqual([401, 401]);
    expect(unknown.body.detail).toBe(wrong.body.detail);
    await attempt('viewer', 'wrong-password');
    await attempt('viewer', 'wrong-password'); // third failure: locked
    const locked = await attempt('viewer', OPS_PASSWORD);
    expect(locked.status).toBe(401);
    expect(locked.body.detail).toMatch(/try again later/);
  });

  it('maps a CA client certificate to its configured principal and scopes', async () => {
    const { client } = await testTls();
    const read = await kms.api('get', '/elastickeys').cert(client.chain).key(client.key);
    expect(read.status).toBe(200);
    const write = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .cert(client.chain)
      .key(client.key)
      .type('text/plain')
      .send('x');
    expect([write.status, write.body.required_scope]).toEqual([403, 'kms:encrypt']);
  });

  it('accepts an API key by its id and secret, with only its configured scopes', async () => {
    const key = `ApiKey batch.${API_KEY_SECRET}`;
    const jwe = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', key)
      .type('text/plain')
      .send('x');
    expect(jwe.status).toBe(200);
    const read = await kms.api('get', '/elastickeys').set('Authorization', key);
    expect([read.status, read.body.required_scope]).toEqual([403, 'kms:pool:read']);
    const wrong = await kms.api('get', '/elastickeys').set('Authorization', 'ApiKey batch.not-the-secret');
    expect([wrong.status, wrong.body.code]).toEqual([401, 'authentication_required']);
  });

  it('lets kms:write encrypt and decrypt, and kms:read only read', async () => {
    const writer = await bearer('kms:write');
    const jwe = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', writer)
      .type('text/plain')
      .send('hello');
    expect(jwe.status).toBe(200);
    const plain = await kms
      .api('post', `/elastickey/${keyId}/decrypt`)
      .set('Authorization', writer)
      .type('text/plain')
      .send(jwe.text);
    expect(plain.status).toBe(200);
    expect(Buffer.from(plain.body as Buffer).toString()).toBe('hello');

    const reader = await bearer('kms:read');
    expect((await kms.api('get', `/elastickey/${keyId}`).set('Authorization', reader)).status).toBe(200);
    const refused = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', reader)
      .type('text/plain')
      .send('x');
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(refused.headers['www-authenticate']).toContain('scope="kms:encrypt"');
    expect(refused.body).toMatchObject({ code: 'insufficient_scope', required_scope: 'kms:encrypt' });
  });

  it('matches fine scopes exactly: kms:encrypt alone cannot decrypt, rotate or create keys', async () => {
    const encryptOnly = await bearer('kms:encrypt');
    const jwe = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', encryptOnly)
      .type('text/plain')
      .send('x');
    expect(jwe.status).toBe(200);
    const decrypt = await kms
      .api('post', `/elastickey/${keyId}/decrypt`)
      .set('Authorization', encryptOnly)
      .type('text/plain')
      .send(jwe.text);
    expect([decrypt.status, decrypt.body.required_scope]).toEqual([403, 'kms:decrypt']);
    const rotate = await kms.api('post', `/elastickey/${keyId}/materialkey`).set('Authorization', encryptOnly);
    expect([rotate.status, rotate.body.required_scope]).toEqual([403, 'kms:key:rotate']);
    const rotated = await kms
      .api('post', `/elastickey/${keyId}/materialkey`)
      .set('Authorization', await bearer('kms:key:rotate'));
    expect(rotated.status).toBe(201);
  });

  it('needs kms:key:create to import and kms:key:rotate to generate a material key', async () => {
    const importable = await kms
      .api('post', '/elastickey')
      .set('Authorization', await bearer('kms:admin'))
      .send({ name: uniquePrefix('import'), description: 'd', algorithm: 'ES256', import_allowed: true });
    expect(importable.status).toBe(201);
    // A public key alone: the import path and its scope are the same as for a wrapped key.
    const jwk = publicJwk(await generateJwk(keySpecFor(parseKeyAlgorithm('ES256')), { kid: 'theirs' }));
    const path = `/elastickey/${String(importable.body.elastic_key_id)}/materialkey`;
    const asRotator = await kms
      .api('post', path)
      .set('Authorization', await bearer('kms:key:rotate'))
      .send({ jwk });
    expect([asRotator.status, asRotator.body.required_scope]).toEqual([403, 'kms:key:create']);
    const asCreator = await kms
      .api('post', path)
      .set('Authorization', await bearer('kms:key:create'))
      .send({ jwk });
    expect(asCreator.status).toBe(201);
  });

  it('refuses a revoked token for sensitive operations while reads still pass', async () => {
    const token = await bearer('kms:write kms:read', { jti: `revoked-${db.dialect}` });
    issuer.revoked.add(`revoked-${db.dialect}`);
    expect((await kms.api('get', '/elastickeys').set('Authorization', token)).status).toBe(200);
    const res = await kms.api('post', `/elastickey/${keyId}/encrypt`).set('Authorization', token).type('text/plain');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('token_revoked');
  });

  it('fails closed with 503 for sensitive operations when Identity is down, reads keep working', async () => {
    const token = await bearer('kms:write kms:read');
    await kms.api('get', '/elastickeys').set('Authorization', token); // keys cached
    issuer.down = true;
    expect((await kms.api('get', '/elastickeys').set('Authorization', token)).status).toBe(200);
    const res = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', token)
      .type('text/plain')
      .send('x');
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('identity_unavailable');
  });

  it('refuses tokens for another audience or from another issuer', async () => {
    const other = await kms
      .api('get', '/elastickeys')
      .set('Authorization', await bearer('kms:read', { aud: 'https://other.example' }));
    expect([other.status, other.body.code]).toEqual([401, 'invalid_audience']);
    const foreign = await kms
      .api('get', '/elastickeys')
      .set('Authorization', await bearer('kms:read', { iss: 'https://evil.example' }));
    expect([foreign.status, foreign.body.code]).toEqual([401, 'invalid_issuer']);
  });
});

describe('the access table', () => {
  it('covers every operation of the OpenAPI document with a KMS scope', () => {
    const document = openApiDocument({ version: 'test' }) as { paths: Record<string, Record<string, unknown>> };
    const documented: Request[] = [];
    for (const [path, item] of Object.entries(document.paths)) {
      // The browser sign-in routes (login, session, logout) are not resources: they need no scope.
      if ('servers' in item) continue;
      for (const method of Object.keys(item).filter((key) => ['get', 'post', 'put', 'delete'].includes(key))) {
        const req = { method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x'), headers: {} } as Request;
        const operation = operationOf(req);
        expect([path, method, operation && (KMS_FINE_SCOPES as readonly string[]).includes(operation.scope)]).toEqual([
          path,
          method,
          true,
        ]);
        documented.push(req);
      }
    }
    // And no rule is left over for a route the document does not have.
    for (const [method, path] of ACCESS_RULES) {
      expect([method, String(path), documented.some((req) => req.method === method && path.test(req.path))]).toEqual([
        method,
        String(path),
        true,
      ]);
    }
  });

  it('lets kms:admin imply every fine scope, kms:write and kms:read their documented sets', () => {
    expect([...(KMS_SCOPE_IMPLICATIONS['kms:admin'] ?? [])].sort()).toEqual([...KMS_FINE_SCOPES].sort());
    expect(KMS_SCOPE_IMPLICATIONS['kms:write']).toContain('kms:rewrap');
    expect(KMS_SCOPE_IMPLICATIONS['kms:read']).toEqual(['kms:pool:read', 'kms:key:read', 'kms:verify']);
    expect(KMS_SCOPE_IMPLICATIONS['kms:write']).not.toContain('kms:verify');
  });
});
