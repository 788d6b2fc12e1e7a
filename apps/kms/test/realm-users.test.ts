import { beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { hashPassword, uuidv4, uuidv7, type Database } from '@cryptoutil/infra';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema, type Realms } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

const FILE_REALM = '5d1f0c2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f';
const DB_REALM = '8e2a4c6d-1b3f-4d5e-9a7b-0c1d2e3f4a5b';
const FILE_PASSWORD = 'file-realm-password-1';
const DB_PASSWORD = 'database-realm-password-1';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A file realm with `shared` and a database realm with roles `reader` and `writer`, asked in `priority`. */
async function realmsWith(priority: ('file' | 'database' | 'oidc')[]): Promise<Realms> {
  return buildRealms(
    realmFileSchema.parse({
      version: 1,
      priority,
      realms: [
        {
          id: FILE_REALM,
          name: 'operators',
          type: 'file',
          roles: [{ name: 'reader', permissions: ['kms:read'] }],
          users: [
            {
              id: '01a20f00-0000-7000-8000-00000000f001',
              username: 'shared',
              password_hash: await hashPassword(FILE_PASSWORD, 1000),
              roles: ['reader'],
            },
          ],
        },
        {
          id: DB_REALM,
          name: 'people',
          type: 'database',
          roles: [
            { name: 'reader', permissions: ['kms:read'] },
            { name: 'writer', permissions: ['kms:write'], inherits: ['reader'] },
          ],
        },
      ],
    }),
    { demo: false },
  );
}

async function startWith(db: Database, realms: Realms): Promise<TestKms> {
  const login = createPasswordLogin({ realms, db, lockout: { maxFailures: 5, lockoutMs: 60_000 }, failureDelayMs: 1 });
  const authenticate = createAuthenticator({ methods: ['basic'], login, apiKeys: [], certificates: [] });
  return startTestKms(db, { access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic'] }), realms });
}

describeEachDatabase('KMS database realm', (database) => {
  let db: Database;
  let kms: TestKms;
  const users = `/admin/v1/realms/${DB_REALM}/users`;

  beforeAll(async () => {
    db = await database.open(KMS_MIGRATIONS);
    kms = await startWith(db, await realmsWith(['file', 'database', 'oidc']));
  });

  it('stores users in kms_realm_users with the documented columns and one username per realm', async () => {
    const columns =
      db.dialect === 'postgres'
        ? (
            await db.all<{ name: string }>(sql`SELECT column_name AS name FROM information_schema.columns
              WHERE table_name = 'kms_realm_users' AND table_schema = current_schema()`)
          ).map((row) => row.name)
        : (await db.all<{ name: string }>(sql`SELECT name FROM pragma_table_info('kms_realm_users')`)).map(
            (row) => row.name,
          );
    expect(columns.sort()).toEqual(
      [
        'id',
        'realm_id',
        'username',
        'password_hash',
        'email',
        'roles',
        'tenants',
        'enabled',
        'metadata',
        'metadata_schema',
        'created_at',
        'updated_at',
        'last_login_at',
      ].sort(),
    );
    const row = (id: string, realm: string) =>
      sql`INSERT INTO kms_realm_users (id, realm_id, username, password_hash, roles, tenants, enabled, metadata,
        created_at, updated_at) VALUES (${id}, ${realm}, 'twice', 'h', '[]', '[]', 1, '{}', 'now', 'now')`;
    await db.run(row(uuidv7(), DB_REALM));
    // (A `.then` rather than `rejects.toThrow`: the driver's error class comes from outside Jest's realm.)
    const duplicate = await db.run(row(uuidv7(), DB_REALM)).then(
      () => 'inserted',
      (error: unknown) => String(error),
    );
    expect(duplicate).toMatch(/UNIQUE constraint failed|duplicate key value violates unique constraint/);
    // The same username in another realm is another user.
    await db.run(row(uuidv7(), FILE_REALM));
    await db.run(sql`DELETE FROM kms_realm_users WHERE username = 'twice'`);
  });

  it('creates, reads, lists, changes and deletes users on the admin listener, never showing the hash', async () => {
    const tenant = uuidv4();
    const created = await kms.admin('post', users).send({
      username: 'alice',
      password: 'alice-password-123',
      email: 'alice@example.com',
      roles: ['writer'],
      tenants: [tenant],
      metadata: { team: 'payments' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ realm_id: DB_REALM, username: 'alice', roles: ['writer'], enabled: true });
    expect(JSON.stringify(created.body)).not.toMatch(/pbkdf2|alice-password/);
    const id = String(created.body.id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const [stored] = await db.all<{ password_hash: string }>(
      sql`SELECT password_hash FROM kms_realm_users WHERE id = ${id}`,
    );
    expect(stored?.password_hash).toMatch(/^\$pbkdf2-sha256\$i=600000\$/);

    const again = await kms.admin('post', users).send({ username: 'alice', password: 'another-password-1' });
    expect([again.status, again.body.code]).toEqual([409, 'username_taken']);
    const badRole = await kms
      .admin('post', users)
      .send({ username: 'bob', password: 'bob-password-1234', roles: ['root'] });
    expect([badRole.status, badRole.body.code]).toEqual([400, 'unknown_role']);
    const badTenant = await kms
      .admin('post', users)
      .send({ username: 'bob', password: 'bob-password-1234', tenants: ['abc'] });
    expect([badTenant.status, badTenant.body.code]).toEqual([400, 'invalid_tenant_id']);
    const fileRealm = await kms
      .admin('post', `/admin/v1/realms/${FILE_REALM}/users`)
      .send({ username: 'bob', password: 'bob-password-1234' });
    expect([fileRealm.status, fileRealm.body.code]).toEqual([404, 'realm_not_found']);

    const list = await kms.admin('get', `${users}?size=10`);
    expect(list.body.items.map((user: { username: string }) => user.username)).toContain('alice');
    expect((await kms.admin('get', `${users}/${id}`)).body.email).toBe('alice@example.com');

    const changed = await kms.admin('patch', `${users}/${id}`).send({ roles: ['reader'], enabled: false });
    expect(changed.body).toMatchObject({ roles: ['reader'], enabled: false, username: 'alice' });
    const rename = await kms.admin('patch', `${users}/${id}`).send({ username: 'mallory' });
    expect([rename.status, rename.body.code]).toEqual([400, 'invalid_body']);

    expect((await kms.admin('delete', `${users}/${id}`)).status).toBe(204);
    const gone = await kms.admin('get', `${users}/${id}`);
    expect([gone.status, gone.body.code]).toEqual([404, 'realm_user_not_found']);
  });

  it('signs database users in over HTTP Basic with the scopes of their roles, and refuses disabled ones', async () => {
    const created = await kms
      .admin('post', users)
      .send({ username: 'carol', password: DB_PASSWORD, roles: ['writer'] });
    const id = String(created.body.id);
    const write = await kms
      .api('post', '/elastickey')
      .set('Authorization', basic('carol', DB_PASSWORD))
      .send({ name: `carol-${id.slice(-6)}`, description: 'd', algorithm: 'A256GCM/dir' });
    expect(write.status).toBe(201);
    expect((await kms.admin('get', `${users}/${id}`)).body.last_login_at).toEqual(expect.any(String));
    const wrong = await kms.api('get', '/elastickeys').set('Authorization', basic('carol', 'not-the-password'));
    expect([wrong.status, wrong.body.code]).toEqual([401, 'authentication_required']);

    await kms.admin('patch', `${users}/${id}`).send({ roles: ['reader'] });
    const read = await kms.api('get', '/elastickeys').set('Authorization', basic('carol', DB_PASSWORD));
    expect(read.status).toBe(200);
    const demoted = await kms
      .api('post', '/elastickey')
      .set('Authorization', basic('carol', DB_PASSWORD))
      .send({ name: 'refused', description: 'd', algorithm: 'A256GCM/dir' });
    expect([demoted.status, demoted.body.code]).toEqual([403, 'insufficient_scope']);

    await kms.admin('patch', `${users}/${id}`).send({ enabled: false });
    const disabled = await kms.api('get', '/elastickeys').set('Authorization', basic('carol', DB_PASSWORD));
    expect(disabled.status).toBe(401);
  });

  it('asks the realms in the configured order: the first realm that knows the username decides', async () => {
    await kms.admin('post', users).send({ username: 'shared', password: DB_PASSWORD, roles: ['writer'] });
    // Default order file → database: the file realm's user answers; the database password is refused.
    expect((await kms.api('get', '/elastickeys').set('Authorization', basic('shared', FILE_PASSWORD))).status).toBe(
      200,
    );
    expect((await kms.api('get', '/elastickeys').set('Authorization', basic('shared', DB_PASSWORD))).status).toBe(401);

    const reversed = await startWith(db, await realmsWith(['database', 'file', 'oidc']));
    expect((await reversed.api('get', '/elastickeys').set('Authorization', basic('shared', DB_PASSWORD))).status).toBe(
      200,
    );
    expect(
      (await reversed.api('get', '/elastickeys').set('Authorization', basic('shared', FILE_PASSWORD))).status,
    ).toBe(401);
  });
});

describe('database realms in the realm file', () => {
  it('refuses users listed under a database realm: they live in the database', () => {
    expect(() =>
      buildRealms(
        realmFileSchema.parse({
          version: 1,
          realms: [
            {
              id: DB_REALM,
              name: 'people',
              type: 'database',
              users: [{ id: '01a20f00-0000-7000-8000-00000000f002', username: 'x', password_hash: 'h' }],
            },
          ],
        }),
        { demo: false },
      ),
    ).toThrow('realms[0].users: a database realm keeps its users in kms_realm_users, not in the file');
  });
});
