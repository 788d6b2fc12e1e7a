import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { TokenValidator } from '@cryptoutil/jose-authority';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import type { Database } from '@cryptoutil/infra';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { tenantSchemaName, tenantTables } from '../src/data/tenant-tables.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { TenantDirectory } from '../src/domain/tenant.js';
import { EncryptionUsage } from '../src/domain/encryption-usage.js';
import { startTestKms, type TestKms } from './harness.js';

const AUDIENCE = 'https://kms.tenants.test';
const issuer = new FakeIssuer();
beforeAll(async () => {
  await issuer.start();
  await issuer.addKey('tenants-key');
  issuer.audience = AUDIENCE;
});
afterAll(async () => issuer.stop());

/** Whether the named schema exists: a PostgreSQL schema, or an attached SQLite database. */
async function schemaExists(db: Database, name: string): Promise<boolean> {
  if (db.dialect === 'postgres') {
    const rows = await db.all(sql`SELECT 1 FROM information_schema.schemata WHERE schema_name = ${name}`);
    return rows.length > 0;
  }
  const rows = await db.all<{ name: string }>(sql`PRAGMA database_list`);
  return rows.some((row) => row.name === name);
}

describeEachDatabase('KMS tenants', (database) => {
  let kms: TestKms;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const token = async (claims: Record<string, unknown>, scope = 'kms:write kms:read') =>
    `Bearer ${await issuer.token({ scope, sub: 'user', ...claims })}`;
  let asA: string;
  let asB: string;
  let asBoth: string;
  let keyOfA: string;

  beforeAll(async () => {
    const validator = new TokenValidator({
      issuer: issuer.url,
      audience: AUDIENCE,
      revocation: {
        mode: 'off',
        auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 'kms-secret-0123456789' },
      },
    });
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: '3f0d7a52-8a0e-4c39-9a57-2f1b0c6e9d11',
            name: 'local',
            type: 'file',
            roles: [{ name: 'writer', permissions: ['kms:write', 'kms:read'] }],
            users: [
              {
                id: '01a20f00-0000-7000-8000-0000000000b1',
                username: 'bob',
                password: 'bob-password',
                roles: ['writer'],
                tenants: [tenantB],
              },
            ],
          },
        ],
      }),
      { demo: true },
    );
    const opened = await database.open(KMS_MIGRATIONS);
    const authenticate = createAuthenticator({
      methods: ['bearer', 'basic'],
      validator,
      login: createPasswordLogin({ realms, db: opened, lockout: { maxFailures: 5, lockoutMs: 60_000 } }),
      apiKeys: [],
      certificates: [],
    });
    kms = await startTestKms(opened, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic'] }),
    });
    asA = await token({ tenant_id: tenantA });
    asB = await token({ tenant_id: tenantB });
    asBoth = await token({ tenant_id: tenantA, tenant_ids: [tenantB] });
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', asA)
      .send({ name: 'shared-name', description: 'tenant A', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    keyOfA = String(created.body.elastic_key_id);
  });

  it("hides another tenant's key completely: read, list, use and mutate are all 404 or empty", async () => {
    const read = await kms.api('get', `/elastickey/${keyOfA}`).set('Authorization', asB);
    expect([read.status, read.body.code]).toEqual([404, 'elastic_key_not_found']);
    const list = await kms.api('get', '/elastickeys').set('Authorization', asB);
    expect(list.body.items.map((key: { elastic_key_id: string }) => key.elastic_key_id)).not.toContain(keyOfA);
    const jwe = await kms
      .api('post', `/elastickey/${keyOfA}/encrypt`)
      .set('Authorization', asA)
      .type('text/plain')
      .send('for A only');
    expect(jwe.status).toBe(200);
    for (const [method, path, body] of [
      ['post', `/elastickey/${keyOfA}/encrypt`, 'x'],
      ['post', `/elastickey/${keyOfA}/decrypt`, jwe.text],
      ['put', `/elastickey/${keyOfA}`, undefined],
      ['delete', `/elastickey/${keyOfA}`, undefined],
      ['get', `/elastickey/${keyOfA}/materialkeys`, undefined],
    ] as const) {
      const call = kms.api(method, path).set('Authorization', asB);
      const res = await (body === undefined
        ? method === 'put'
          ? call.send({ name: 'stolen', description: '' })
          : call
        : call.type('text/plain').send(body));
      expect([path, res.status]).toEqual([path, 404]);
    }
    // A realm user of tenant B over HTTP Basic gets the same answer.
    const basic = await kms.api('get', `/elastickey/${keyOfA}`).auth('bob', 'bob-password');
    expect(basic.status).toBe(404);
    expect((await kms.api('get', `/elastickey/${keyOfA}`).set('Authorization', asA)).status).toBe(200);
  });

  it('keeps each tenant in its own schema: a row of A is not in B', async () => {
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', asB)
      .send({ name: 'shared-name', description: 'the same name, another tenant', algorithm: 'ES256' });
    expect(created.status).toBe(201);
    const schemaA = tenantSchemaName(tenantA);
    expect(schemaA).toBe(`tenant_${tenantA.replaceAll('-', '_')}`);
    const contextA = await kms.service.tenants.context(tenantA);
    const contextB = await kms.service.tenants.context(tenantB);
    expect(await schemaExists(contextA.db, schemaA)).toBe(true);
    const idsIn = async (context: typeof contextA) =>
      (await context.db.all<{ id: string }>(sql`SELECT id FROM ${context.tables.elasticKeys}`)).map((row) => row.id);
    expect(await idsIn(contextA)).toEqual([keyOfA]);
    expect(await idsIn(contextB)).toEqual([String(created.body.elastic_key_id)]);
    // Nothing of either tenant is in the default tenant's schema.
    expect(await idsIn(kms.ctx)).not.toContain(keyOfA);
  });

  it('lets X-Tenant-ID pick one of the principal’s tenants and nothing else', async () => {
    const mine = await kms.api('get', `/elastickey/${keyOfA}`).set('Authorization', asBoth).set('X-Tenant-ID', tenantA);
    expect(mine.status).toBe(200);
    const other = await kms
      .api('get', `/elastickey/${keyOfA}`)
      .set('Authorization', asBoth)
      .set('X-Tenant-ID', tenantB);
    expect(other.status).toBe(404);
    const foreign = await kms.api('get', '/elastickeys').set('Authorization', asB).set('X-Tenant-ID', tenantA);
    expect([foreign.status, foreign.body.code]).toEqual([403, 'tenant_forbidden']);
    expect(foreign.headers['content-type']).toMatch(/application\/problem\+json/);
    const malformed = await kms.api('get', '/elastickeys').set('Authorization', asB).set('X-Tenant-ID', 'abc');
    expect([malformed.status, malformed.body.code]).toEqual([400, 'invalid_tenant_id']);
    // A tenant in the query string is ignored: the principal's tenant decides.
    const query = await kms.api('get', `/elastickeys?tenant_id=${tenantA}`).set('Authorization', asB);
    expect(query.body.items.map((key: { elastic_key_id: string }) => key.elastic_key_id)).not.toContain(keyOfA);
  });

  it('puts callers without a tenant in the default tenant, and refuses a token naming a malformed tenant', async () => {
    const plain = await token({});
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', plain)
      .send({ name: uniquePrefix('default'), description: '', algorithm: 'HS256' });
    expect(created.status).toBe(201);
    const found = await kms.ctx.db.all(
      sql`SELECT id FROM ${kms.ctx.tables.elasticKeys} WHERE id = ${String(created.body.elastic_key_id)}`,
    );
    expect(found).toHaveLength(1);
    expect(kms.ctx.tenantId).toBe(kms.service.tenants.defaultTenant.id);
    const bad = await kms.api('get', '/elastickeys').set('Authorization', await token({ tenant_id: 'not-a-uuid' }));
    expect([bad.status, bad.body.code]).toEqual([403, 'tenant_forbidden']);
  });

  it('creates, lists and deletes tenants on the admin listener, schema with the tenant', async () => {
    const created = await kms.admin('post', '/admin/v1/tenants').send({ name: uniquePrefix('acme') });
    expect(created.status).toBe(201);
    const id = String(created.body.tenant_id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const context = await kms.service.tenants.context(id);
    expect(await schemaExists(context.db, tenantSchemaName(id))).toBe(true);
    const listed = await kms.admin('get', '/admin/v1/tenants');
    expect(listed.body.items.map((tenant: { tenant_id: string }) => tenant.tenant_id)).toEqual(
      expect.arrayContaining([id, tenantA, tenantB, kms.service.tenants.defaultTenant.id]),
    );
    const again = await kms.admin('post', '/admin/v1/tenants').send({ name: created.body.name });
    expect([again.status, again.body.code]).toEqual([409, 'tenant_exists']);
    const badId = await kms.admin('post', '/admin/v1/tenants').send({ name: uniquePrefix('x'), id: 'abc' });
    expect([badId.status, badId.body.code]).toEqual([400, 'invalid_tenant_id']);
    expect((await kms.admin('delete', `/admin/v1/tenants/${id}`)).status).toBe(204);
    expect(await schemaExists(kms.service.db, tenantSchemaName(id))).toBe(false);
    expect((await kms.admin('delete', `/admin/v1/tenants/${id}`)).status).toBe(404);
    const keepDefault = await kms.admin('delete', `/admin/v1/tenants/${kms.service.tenants.defaultTenant.id}`);
    expect([keepDefault.status, keepDefault.body.code]).toEqual([409, 'tenant_is_default']);
  });
});

describeEachDatabase('KMS keys stored before tenants', (database) => {
  it('move into the default tenant once, unchanged', async () => {
    const db = await database.open(KMS_MIGRATIONS);
    const now = new Date().toISOString();
    const id = '01a20f00-0000-7000-8000-00000000c0de';
    // Rows in the single shared tables of the first schema version.
    await db.run(sql`INSERT INTO kms_elastic_keys (id, name, description, provider, algorithm, versioning_allowed,
      import_allowed, status, created_at, updated_at) VALUES (${id}, ${'old-key'}, ${''}, ${'Internal'}, ${'HS256'},
      ${1}, ${0}, ${'active'}, ${now}, ${now})`);
    await db.run(sql`INSERT INTO kms_material_keys (id, elastic_key_id, jwe) VALUES (${`${id}1`}, ${id}, ${'x.y.z'})`);
    await db.run(sql`INSERT INTO kms_material_keys (id, elastic_key_id, jwe) VALUES (${`${id}0`}, ${id}, ${'a.b.c'})`);
    const base = {
      db,
      barrier: undefined as never,
      now: () => new Date(),
      deleteGracePeriodMs: 1,
      usage: new EncryptionUsage(),
    };
    const tenants = await TenantDirectory.open(base);
    const tables = tenantTables(tenantSchemaName(tenants.defaultTenant.id));
    const context = await tenants.context(tenants.defaultTenant.id);
    expect(await context.db.all(sql`SELECT id, name FROM ${tables.elasticKeys}`)).toEqual([{ id, name: 'old-key' }]);
    // Numbered as versions in creation (id) order.
    expect(
      (await context.db.all(sql`SELECT jwe, version FROM ${tables.materialKeys} ORDER BY id`)).map((row) => ({
        jwe: row.jwe,
        version: Number(row.version),
      })),
    ).toEqual([
      { jwe: 'a.b.c', version: 1 },
      { jwe: 'x.y.z', version: 2 },
    ]);
    // The shared tables are gone (on SQLite an unqualified name would now fall through to an attached schema).
    const shared =
      db.dialect === 'postgres'
        ? sql`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE ${'kms_%_keys'}`
        : sql`SELECT name FROM main.sqlite_master WHERE type = ${'table'} AND name LIKE ${'kms_%_keys'}`;
    expect((await db.all<Record<string, string>>(shared)).map((row) => Object.values(row)[0]).sort()).toEqual([
      'kms_content_keys',
      'kms_intermediate_keys',
      'kms_root_keys',
    ]);
    // Opening again is a no-op.
    const reopened = await TenantDirectory.open(base);
    expect(reopened.defaultTenant.id).toBe(tenants.defaultTenant.id);
    await reopened.remove(randomUUID()).catch((error: { status?: number }) => expect(error.status).toBe(404));
  });
});

describe('tenant schema names', () => {
  it('are tenant_ and the UUID with underscores, and nothing else gets through', () => {
    expect(tenantSchemaName('7d3c2a1b-0e9f-4a8b-9c7d-6e5f4a3b2c1d')).toBe(
      'tenant_7d3c2a1b_0e9f_4a8b_9c7d_6e5f4a3b2c1d',
    );
    expect(() => tenantTables('x"; DROP TABLE y; --')).toThrow(/invalid schema name/);
  });
});
