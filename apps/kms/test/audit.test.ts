import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { AuditLog, verifyAuditChain, type AuditRecord, type Database } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { TokenValidator } from '@cryptoutil/jose-authority';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

const REALM = '4b6d8f0a-2c4e-4a6b-8d0f-1a3c5e7b9d2f';
const basic = (user: string) => `Basic ${Buffer.from(`${user}:${user}-password`).toString('base64')}`;

describeEachDatabase('KMS audit trail', (database) => {
  let db: Database;
  let kms: TestKms;
  let audit: AuditLog;

  const events = async (from: number) =>
    (await audit.list({}, { offset: 0, limit: 1000 })).filter((record) => record.seq > from);
  const lastSeq = async () => (await audit.head())?.seq ?? 0;

  beforeAll(async () => {
    db = await database.open(KMS_MIGRATIONS);
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: REALM,
            name: 'local',
            type: 'file',
            roles: [
              { name: 'writer', permissions: ['kms:write'] },
              { name: 'reader', permissions: ['kms:read'] },
            ],
            users: [
              {
                id: '01a20f00-0000-7000-8000-0000000000c1',
                username: 'wanda',
                password: 'wanda-password',
                roles: ['writer'],
              },
              {
                id: '01a20f00-0000-7000-8000-0000000000c2',
                username: 'reid',
                password: 'reid-password',
                roles: ['reader'],
              },
            ],
          },
        ],
      }),
      { demo: true },
    );
    const login = createPasswordLogin({
      realms,
      db,
      lockout: { maxFailures: 5, lockoutMs: 60_000 },
      failureDelayMs: 1,
    });
    const authenticate = createAuthenticator({ methods: ['basic'], login, apiKeys: [], certificates: [] });
    audit = new AuditLog(db, 'kms');
    kms = await startTestKms(db, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic'] }),
      audit,
    });
  });

  it('records each operation once, with who, tenant, key and outcome, and failures with their code', async () => {
    const start = await lastSeq();
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', basic('wanda'))
      .send({ name: `audited-${start}`, description: 'd', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    const keyId = String(created.body.elastic_key_id);
    const jwe = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', basic('wanda'))
      .type('text/plain')
      .send('audited plaintext');
    expect(jwe.status).toBe(200);
    const refused = await kms
      .api('post', `/elastickey/${keyId}/encrypt`)
      .set('Authorization', basic('reid'))
      .type('text/plain')
      .send('refused plaintext');
    expect(refused.status).toBe(403);
    const anonymous = await kms.api('get', `/elastickey/${keyId}`);
    expect(anonymous.status).toBe(401);
    const missing = await kms
      .api('get', '/elastickey/01a20f00-0000-7000-8000-00000000dead')
      .set('Authorization', basic('reid'));
    expect(missing.status).toBe(404);

    await new Promise((done) => setTimeout(done, 50)); // events are queued when each response finishes
    await audit.flush();
    const recorded = (await events(start)).map((record: AuditRecord) => [
      record.event,
      record.actor,
      record.resource,
      record.outcome,
      record.reason,
    ]);
    expect(recorded).toEqual([
      ['kms.pool.create', `${REALM}/01a20f00-0000-7000-8000-0000000000c1`, null, 'success', null],
      ['kms.encrypt', `${REALM}/01a20f00-0000-7000-8000-0000000000c1`, keyId, 'success', null],
      ['kms.encrypt', `${REALM}/01a20f00-0000-7000-8000-0000000000c2`, keyId, 'failure', 'insufficient_scope'],
      ['kms.pool.read', null, keyId, 'failure', 'authentication_required'],
      [
        'kms.pool.read',
        `${REALM}/01a20f00-0000-7000-8000-0000000000c2`,
        '01a20f00-0000-7000-8000-00000000dead',
        'failure',
        'elastic_key_not_found',
      ],
    ]);
    const [first] = await events(start);
    expect(first?.tenant).toBe(kms.ctx.tenantId);
  });

  it('records admin changes, serves the chain head, pages and a verification, and holds no secret', async () => {
    const start = await lastSeq();
    expect((await kms.admin('post', '/admin/v1/tenants').send({ name: `audit-${start}` })).status).toBe(201);
    await new Promise((done) => setTimeout(done, 50));
    await audit.flush();
    const listed = await kms.admin('get', `/admin/v1/audit?event=kms.admin.tenants.post&size=10`);
    expect(listed.status).toBe(200);
    expect(listed.body.head).toMatch(/^[0-9a-f]{64}$/);
    expect(listed.body.items.at(-1)).toMatchObject({ event: 'kms.admin.tenants.post', outcome: 'success' });
    const verified = await kms.admin('get', '/admin/v1/audit/verify');
    expect(verified.body).toMatchObject({ ok: true, head: listed.body.head });
    const all = JSON.stringify(await db.all(sql`SELECT * FROM kms_audit_log`));
    expect(all).not.toMatch(/password|plaintext|Basic |eyJ/);
  });
});

describeEachDatabase('KMS audit trail of delegated tokens (RFC 8693 act)', (database) => {
  const issuer = new FakeIssuer();
  const AUDIENCE = 'https://kms.test';
  const USER = '01a20f00-0000-7000-8000-0000000000d1';
  let kms: TestKms;
  let audit: AuditLog;

  beforeAll(async () => {
    await issuer.start();
    await issuer.addKey('identity-key-1');
    issuer.audience = AUDIENCE;
    const db = await database.open(KMS_MIGRATIONS);
    const validator = new TokenValidator({ issuer: issuer.url, audience: AUDIENCE, revocation: { mode: 'off' } });
    const realms = buildRealms(realmFileSchema.parse({ version: 1, realms: [] }), { demo: false });
    const login = createPasswordLogin({ realms, db, lockout: { maxFailures: 5, lockoutMs: 60_000 } });
    const authenticate = createAuthenticator({ methods: ['bearer'], validator, login, apiKeys: [], certificates: [] });
    audit = new AuditLog(db, 'kms');
    kms = await startTestKms(db, { access: accessControl({ authenticate, realm: 'kms' }), audit });
  });
  afterAll(() => issuer.stop());

  it('records the acting client as actor and the user it acted for as subject', async () => {
    const token = (claims: Record<string, unknown>) =>
      issuer.token({ scope: 'kms:write kms:encrypt', client_id: 'kms-service', ...claims }).then((t) => `Bearer ${t}`);
    const direct = await token({ sub: USER });
    const delegated = await token({ sub: USER, act: { sub: 'kms-service' } });
    const nested = await token({ sub: USER, act: { sub: 'reporting', act: { sub: 'kms-service' } } });
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', direct)
      .send({ name: 'delegation', description: 'd', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    const keyId = String(created.body.elastic_key_id);
    for (const authorization of [delegated, nested]) {
      const jwe = await kms
        .api('post', `/elastickey/${keyId}/encrypt`)
        .set('Authorization', authorization)
        .type('text/plain')
        .send('x');
      expect(jwe.status).toBe(200);
    }
    await new Promise((done) => setTimeout(done, 50));
    await audit.flush();
    const recorded = (await audit.list({}, { offset: 0, limit: 100 })).map((record) => [
      record.event,
      record.actor,
      record.subject,
      record.resource,
    ]);
    expect(recorded).toEqual([
      ['kms.pool.create', USER, null, null],
      ['kms.encrypt', 'kms-service', USER, keyId],
      ['kms.encrypt', 'reporting', USER, keyId],
    ]);
    expect(await verifyAuditChain(audit.db, 'kms')).toMatchObject({ ok: true, records: 3 });
    // Filtering by actor finds what the service did for users.
    expect(await audit.list({ actor: 'kms-service' }, { offset: 0, limit: 10 })).toHaveLength(1);
  });
});
