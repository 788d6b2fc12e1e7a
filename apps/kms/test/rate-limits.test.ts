/**
 * Rate limits (issue #10): crypto operations per caller and per client IP, password sign-ins per client
 * IP (browser login and HTTP Basic); each refusal a 429 problem with Retry-After, recorded in the audit log.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { AuditLog, hashPassword, type Database } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { accessControl } from '../src/api/access.js';
import { AUTH_METHODS, createAuthenticator } from '../src/api/authentication.js';
import { kmsRateLimiters } from '../src/api/rate-limits.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { SessionStore } from '../src/domain/session.js';
import { startTestKms, type TestKms } from './harness.js';

const SECRET = 'rate-limit-api-key-secret-0123456789';
const PASSWORD = 'rate-limit-password-0123';

describeEachDatabase('KMS rate limits', (database) => {
  let kms: TestKms;
  let db: Database;
  let audit: AuditLog;
  let keyId: string;

  beforeAll(async () => {
    db = await database.open(KMS_MIGRATIONS); // includes the audit table
    audit = new AuditLog(db, 'kms');
    const hash = await hashPassword(SECRET, 1000);
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: '5d1c3b2a-9e8f-4a7b-8c6d-5e4f3a2b1c0d',
            name: 'local',
            type: 'file',
            roles: [{ name: 'reader', permissions: ['kms:read'] }],
            users: [
              {
                id: '01a20f00-0000-7000-8000-0000000000aa',
                username: 'reader',
                password_hash: await hashPassword(PASSWORD, 1000),
                roles: ['reader'],
              },
            ],
          },
        ],
      }),
      { demo: false },
    );
    const login = createPasswordLogin({
      realms,
      db,
      lockout: { maxFailures: 100, lockoutMs: 60_000 },
      failureDelayMs: 1,
    });
    const authenticate = createAuthenticator({
      methods: AUTH_METHODS,
      login,
      apiKeys: ['one', 'two', 'three'].map((id) => ({ id, keyHash: hash, scopes: ['kms:admin' as const] })),
      certificates: [],
    });
    kms = await startTestKms(db, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic', 'ApiKey'] }),
      browser: { login, sessions: new SessionStore(db, { idleTimeoutMs: 60_000, absoluteTimeoutMs: 600_000 }) },
      audit,
      rateLimits: kmsRateLimiters(
        {
          login_per_ip: { burst: 3, per_second: 0.01 },
          crypto_per_client: { burst: 4, per_second: 0.01 },
          crypto_per_ip: { burst: 10, per_second: 0.01 },
        },
        db,
      ),
    });
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', `ApiKey one.${SECRET}`)
      .send({ name: uniquePrefix('limited'), description: '', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    keyId = String(created.body.elastic_key_id);
  });

  const encrypt = (client: string) =>
    kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', `ApiKey ${client}.${SECRET}`)
      .type('text/plain')
      .send('limited');

  it('limits crypto per caller, then per client IP, with 429 and Retry-After; other operations pass', async () => {
    const one = [];
    for (let n = 0; n < 5; n++) one.push((await encrypt('one')).status);
    expect(one).toEqual([200, 200, 200, 200, 429]);
    const refused = await encrypt('one');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: 'too_many_requests' });
    // Another caller has its own bucket, until the address's bucket (10) is empty too.
    const two = [];
    for (let n = 0; n < 5; n++) two.push((await encrypt('two')).status);
    expect(two).toEqual([200, 200, 200, 200, 429]);
    expect((await encrypt('three')).status).toBe(429);
    // Listing keys is not a crypto operation.
    expect((await kms.api('get', '/elastickeys').set('Authorization', `ApiKey three.${SECRET}`)).status).toBe(200);
    await audit.flush();
    const refusals = await audit.list({ event: 'kms.encrypt' }, { offset: 0, limit: 100 });
    expect(refusals.filter((record) => record.reason === 'too_many_requests')).toHaveLength(4);
  });

  it('limits password sign-ins per client IP, browser login and HTTP Basic together', async () => {
    const basic = `Basic ${Buffer.from(`reader:${PASSWORD}`).toString('base64')}`;
    const answers = [
      (await kms.api('get', '/elastickeys').set('Authorization', basic)).status,
      (await kms.browser('post', '/login').send({ username: 'reader', password: PASSWORD })).status,
      (await kms.browser('post', '/login').send({ username: 'reader', password: 'wrong' })).status,
      (await kms.browser('post', '/login').send({ username: 'reader', password: PASSWORD })).status,
      (await kms.api('get', '/elastickeys').set('Authorization', basic)).status,
    ];
    expect(answers).toEqual([200, 200, 401, 429, 429]);
    // API keys are not password sign-ins.
    expect((await kms.api('get', '/elastickeys').set('Authorization', `ApiKey one.${SECRET}`)).status).toBe(200);
  });
});
