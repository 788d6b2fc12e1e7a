import { beforeAll, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { uuidv4, type Database } from '@cryptoutil/infra';
import { SESSION_COOKIE } from '../src/api/browser-session.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin, type PasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema, type Realms } from '../src/domain/realm.js';
import { SessionStore } from '../src/domain/session.js';
import { startTestKms, type TestKms } from './harness.js';

const REALM = '2c4e6a8b-0d1f-4a3c-8e5b-7d9f1a3c5e7b';
const IDLE_MS = 15 * 60_000;
const ABSOLUTE_MS = 8 * 3600_000;
const users = `/admin/v1/realms/${REALM}/users`;

const realms: Realms = buildRealms(
  realmFileSchema.parse({
    version: 1,
    realms: [
      {
        id: REALM,
        name: 'console',
        type: 'database',
        roles: [
          { name: 'reader', permissions: ['kms:read'] },
          { name: 'admin', permissions: ['kms:write'], inherits: ['reader'] },
        ],
      },
    ],
  }),
  { demo: false },
);

/** The session cookie's `name=value` from a login response. */
function sessionCookie(setCookie: string[] | string | undefined): string {
  const cookie = [setCookie ?? []].flat().find((line) => line.startsWith(`${SESSION_COOKIE}=`));
  if (!cookie) throw new Error('no session cookie set');
  return cookie.split(';')[0] as string;
}

describeEachDatabase('KMS browser API sessions', (database) => {
  let db: Database;
  let kms: TestKms;
  let login: PasswordLogin;
  const clock = { now: new Date('2026-01-01T09:00:00Z') };
  let tenantA: string;
  let tenantB: string;

  const signIn = async (username: string, password: string) => {
    const res = await kms.browser('post', '/login').send({ username, password });
    expect(res.status).toBe(200);
    return { cookie: sessionCookie(res.headers['set-cookie']), csrf: String(res.body.csrf_token), body: res.body };
  };

  beforeAll(async () => {
    db = await database.open(KMS_MIGRATIONS);
    login = createPasswordLogin({ realms, db, lockout: { maxFailures: 3, lockoutMs: 60_000 }, failureDelayMs: 1 });
    const sessions = new SessionStore(db, { idleTimeoutMs: IDLE_MS, absoluteTimeoutMs: ABSOLUTE_MS }, () => clock.now);
    kms = await startTestKms(db, { browser: { login, sessions }, realms });
    tenantA = (await kms.service.tenants.create({ name: `a-${uuidv4()}` })).id;
    tenantB = (await kms.service.tenants.create({ name: `b-${uuidv4()}` })).id;
    for (const [username, roles, tenants] of [
      ['ada', ['admin'], [tenantA]],
      ['ben', ['admin'], [tenantB]],
      ['rea', ['reader'], [tenantA]],
    ] as const) {
      const res = await kms
        .admin('post', users)
        .send({ username, password: `${username}-password-1234`, roles, tenants });
      expect(res.status).toBe(201);
    }
  });

  it('signs in with a realm user: a HttpOnly, Secure, SameSite=Strict cookie, and the CSRF token in the body', async () => {
    const res = await kms.browser('post', '/login').send({ username: 'ada', password: 'ada-password-1234' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const [cookie] = [res.headers['set-cookie'] ?? []].flat();
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[0-9a-f-]{36}\\.[A-Za-z0-9_-]{43};`));
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\//);
    expect(res.body).toMatchObject({ username: 'ada', tenants: [tenantA], scopes: ['kms:write', 'kms:read'] });
    expect(res.body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only a hash of the cookie's secret is stored; the id is a UUIDv7.
    const [id, secret] = sessionCookie(cookie).split('=')[1]!.split('.') as [string, string];
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const [row] = await db.all<{ secret_hash: string }>(sql`SELECT secret_hash FROM kms_sessions WHERE id = ${id}`);
    expect(row?.secret_hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(secret);

    const wrong = await kms.browser('post', '/login').send({ username: 'ada', password: 'wrong-password' });
    expect([wrong.status, wrong.body.code]).toEqual([401, 'invalid_credentials']);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const unknown = await kms.browser('post', '/login').send({ username: 'nobody', password: 'wrong-password' });
    expect([unknown.status, unknown.body.code, unknown.body.detail]).toEqual([
      401,
      'invalid_credentials',
      wrong.body.detail,
    ]);
  });

  it('needs the session for every browser API route; service API credentials do not count there', async () => {
    const anonymous = await kms.browser('get', '/elastickeys');
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'authentication_required']);
    expect(anonymous.headers['content-type']).toMatch(/^application\/problem\+json/);
    const basic = await kms
      .browser('get', '/elastickeys')
      .set('Authorization', `Basic ${Buffer.from('ada:ada-password-1234').toString('base64')}`);
    expect(basic.status).toBe(401);
    const forged = await kms
      .browser('get', '/elastickeys')
      .set('Cookie', `${SESSION_COOKIE}=${uuidv4()}.${'A'.repeat(43)}`);
    expect(forged.status).toBe(401);
    const { cookie } = await signIn('ada', 'ada-password-1234');
    const session = await kms.browser('get', '/session').set('Cookie', cookie);
    expect(session.body).toMatchObject({ username: 'ada' });
    expect((await kms.browser('get', '/elastickeys').set('Cookie', cookie)).status).toBe(200);
  });

  it('refuses a state-changing request without the right CSRF token (403), and accepts it with', async () => {
    const { cookie, csrf } = await signIn('ada', 'ada-password-1234');
    const body = { name: `csrf-${uuidv4().slice(0, 8)}`, description: 'd', algorithm: 'A256GCM/dir' };
    const missing = await kms.browser('post', '/elastickey').set('Cookie', cookie).send(body);
    expect([missing.status, missing.body.code]).toEqual([403, 'csrf_token_invalid']);
    const other = await signIn('ada', 'ada-password-1234');
    const foreign = await kms
      .browser('post', '/elastickey')
      .set('Cookie', cookie)
      .set('X-CSRF-Token', other.csrf)
      .send(body);
    expect([foreign.status, foreign.body.code]).toEqual([403, 'csrf_token_invalid']);
    const created = await kms.browser('post', '/elastickey').set('Cookie', cookie).set('X-CSRF-Token', csrf).send(body);
    expect(created.status).toBe(201);
    const encrypted = await kms
      .browser('post', `/elastickey/${created.body.elastic_key_id}/encrypt`)
      .set('Cookie', cookie)
      .set('X-CSRF-Token', csrf)
      .type('text/plain')
      .send('browser secret');
    expect(encrypted.status).toBe(200);
  });

  it("applies the user's roles and tenant: a reader cannot write, another tenant's key is 404", async () => {
    const ada = await signIn('ada', 'ada-password-1234');
    const key = await kms
      .browser('post', '/elastickey')
      .set('Cookie', ada.cookie)
      .set('X-CSRF-Token', ada.csrf)
      .send({ name: `tenant-a-${uuidv4().slice(0, 8)}`, description: 'd', algorithm: 'A256GCM/dir' });
    expect(key.status).toBe(201);
    const rea = await signIn('rea', 'rea-password-1234');
    const refused = await kms
      .browser('post', '/elastickey')
      .set('Cookie', rea.cookie)
      .set('X-CSRF-Token', rea.csrf)
      .send({ name: 'nope', description: 'd', algorithm: 'A256GCM/dir' });
    expect([refused.status, refused.body.code]).toEqual([403, 'insufficient_scope']);
    expect((await kms.browser('get', `/elastickey/${key.body.elastic_key_id}`).set('Cookie', rea.cookie)).status).toBe(
      200,
    );
    const ben = await signIn('ben', 'ben-password-1234');
    const hidden = await kms.browser('get', `/elastickey/${key.body.elastic_key_id}`).set('Cookie', ben.cookie);
    expect([hidden.status, hidden.body.code]).toEqual([404, 'elastic_key_not_found']);
    const list = await kms.browser('get', '/elastickeys').set('Cookie', ben.cookie);
    expect(JSON.stringify(list.body)).not.toContain(String(key.body.elastic_key_id));
    const selected = await kms.browser('get', '/elastickeys').set('Cookie', ben.cookie).set('X-Tenant-ID', tenantA);
    expect([selected.status, selected.body.code]).toEqual([403, 'tenant_forbidden']);
  });

  it('expires sessions after the idle timeout and after the absolute timeout, whatever the activity', async () => {
    const start = clock.now;
    try {
      const idle = await signIn('ada', 'ada-password-1234');
      clock.now = new Date(start.getTime() + IDLE_MS - 60_000);
      expect((await kms.browser('get', '/session').set('Cookie', idle.cookie)).status).toBe(200);
      clock.now = new Date(clock.now.getTime() + IDLE_MS);
      const expired = await kms.browser('get', '/session').set('Cookie', idle.cookie);
      expect([expired.status, expired.body.code]).toEqual([401, 'authentication_required']);

      const busy = await signIn('ada', 'ada-password-1234');
      const signedInAt = clock.now.getTime();
      for (let t = signedInAt; t < signedInAt + ABSOLUTE_MS; t += IDLE_MS / 2) {
        clock.now = new Date(t);
        expect((await kms.browser('get', '/elastickeys').set('Cookie', busy.cookie)).status).toBe(200);
      }
      clock.now = new Date(signedInAt + ABSOLUTE_MS);
      expect((await kms.browser('get', '/elastickeys').set('Cookie', busy.cookie)).status).toBe(401);
    } finally {
      clock.now = start;
    }
  });

  it('logs out (CSRF needed), and ends the sessions of a user whose password or roles change', async () => {
    const session = await signIn('ada', 'ada-password-1234');
    expect((await kms.browser('post', '/logout').set('Cookie', session.cookie)).status).toBe(403);
    expect(
      (await kms.browser('post', '/logout').set('Cookie', session.cookie).set('X-CSRF-Token', session.csrf)).status,
    ).toBe(204);
    expect((await kms.browser('get', '/session').set('Cookie', session.cookie)).status).toBe(401);

    const rea = await signIn('rea', 'rea-password-1234');
    const reaId = String(rea.body.subject).split('/')[1];
    await kms.admin('patch', `${users}/${reaId}`).send({ password: 'rea-new-password-1234' });
    expect((await kms.browser('get', '/session').set('Cookie', rea.cookie)).status).toBe(401);
    await signIn('rea', 'rea-new-password-1234');
  });

  it('shares sessions between instances on one database', async () => {
    const session = await signIn('ada', 'ada-password-1234');
    const sessions = new SessionStore(db, { idleTimeoutMs: IDLE_MS, absoluteTimeoutMs: ABSOLUTE_MS }, () => clock.now);
    const other = await startTestKms(db, { browser: { login, sessions }, realms });
    const res = await other.browser('get', '/session').set('Cookie', session.cookie);
    expect([res.status, res.body.username]).toEqual([200, 'ada']);
  });

  it('slows and then locks a username after repeated wrong passwords, the right one included', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await kms.browser('post', '/login').send({ username: 'ben', password: `guess-${i}` });
      expect(res.status).toBe(401);
    }
    const locked = await kms.browser('post', '/login').send({ username: 'ben', password: 'ben-password-1234' });
    expect([locked.status, locked.body.code]).toEqual([429, 'login_locked']);
    // The lock is the same for a username that does not exist: nothing tells them apart.
    for (let i = 0; i < 3; i++) await kms.browser('post', '/login').send({ username: 'ghost', password: `guess-${i}` });
    const ghost = await kms.browser('post', '/login').send({ username: 'ghost', password: 'any-password' });
    expect([ghost.status, ghost.body.code]).toEqual([429, 'login_locked']);
  });
});
