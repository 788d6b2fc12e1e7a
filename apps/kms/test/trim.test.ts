/**
 * Trim (`POST /elastickey/{id}/trim`) destroys material for good, so it needs kms:admin (its fine scope
 * `kms:key:trim` is implied by nothing else) and every call, refused or not, is in the audit log.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { AuditLog, type AuditRecord } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

const REALM = '6c8e0a2b-4d6f-4b8d-9f1a-3c5e7a9b1d3f';
const ADMIN = '01a20f00-0000-7000-8000-0000000000d1';
const WRITER = '01a20f00-0000-7000-8000-0000000000d2';
const basic = (user: string) => `Basic ${Buffer.from(`${user}:${user}-password`).toString('base64')}`;

describeEachDatabase('trim', (database) => {
  let kms: TestKms;
  let audit: AuditLog;

  beforeAll(async () => {
    const db = await database.open(KMS_MIGRATIONS);
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: REALM,
            name: 'local',
            type: 'file',
            roles: [
              { name: 'admin', permissions: ['kms:admin'] },
              { name: 'writer', permissions: ['kms:write'] },
            ],
            users: [
              { id: ADMIN, username: 'ada', password: 'ada-password', roles: ['admin'] },
              { id: WRITER, username: 'wanda', password: 'wanda-password', roles: ['writer'] },
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

  it('is refused without kms:admin, done with it, and audited both times', async () => {
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', basic('wanda'))
      .send({ name: uniquePrefix('trim'), description: '', algorithm: 'HS256' });
    const id = String(created.body.elastic_key_id);
    expect((await kms.api('post', `/elastickey/${id}/materialkey`).set('Authorization', basic('wanda'))).status).toBe(
      201,
    );
    const raised = await kms
      .api('put', `/elastickey/${id}`)
      .set('Authorization', basic('wanda'))
      .send({ name: `trim-${id}`, description: '', min_decryption_version: 2 });
    expect(raised.status).toBe(200);
    const start = (await audit.head())?.seq ?? 0;

    const refused = await kms.api('post', `/elastickey/${id}/trim`).set('Authorization', basic('wanda'));
    expect([refused.status, refused.body.code]).toEqual([403, 'insufficient_scope']);
    expect(refused.headers['www-authenticate']).toContain('scope="kms:key:trim"');
    const versions = async () =>
      (await kms.api('get', `/elastickey/${id}/materialkeys?sort=version:ASC`).set('Authorization', basic('ada'))).body
        .items as { version: number; destroy_date: string | null }[];
    expect((await versions()).map((version) => version.destroy_date)).toEqual([null, null]);

    const trimmed = await kms.api('post', `/elastickey/${id}/trim`).set('Authorization', basic('ada'));
    expect([trimmed.status, trimmed.body.destroyed_versions]).toEqual([200, [1]]);
    expect((await versions()).map((version) => version.destroy_date !== null)).toEqual([true, false]);

    await new Promise((done) => setTimeout(done, 50)); // events are queued when each response finishes
    await audit.flush();
    const recorded = (await audit.list({}, { offset: 0, limit: 1000 }))
      .filter((record: AuditRecord) => record.seq > start && record.event === 'kms.key.trim')
      .map((record) => [record.actor, record.resource, record.outcome, record.reason]);
    expect(recorded).toEqual([
      [`${REALM}/${WRITER}`, id, 'failure', 'insufficient_scope'],
      [`${REALM}/${ADMIN}`, id, 'success', null],
    ]);
  });
});
