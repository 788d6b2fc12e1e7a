import { beforeAll, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import { AuditLog, createLogger, hashPassword, type Database } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

/** API keys of the test, by id: each has only these scopes. */
const KEYS: Record<string, string[]> = {
  writer: ['kms:write', 'kms:read'],
  rewrapper: ['kms:rewrap'],
  decryptor: ['kms:decrypt'],
  encryptor: ['kms:encrypt'],
  reader: ['kms:read'],
};
const SECRET = 'batch-test-secret-0123456789';
const as = (id: keyof typeof KEYS) => `ApiKey ${id}.${SECRET}`;

type Result = { reference?: string; jwe?: string; jws?: string; data?: string; valid?: boolean; error?: Problem };
type Problem = { type: string; title: string; status: number; code: string; detail?: string; instance?: string };

const b64u = (text: string) => Buffer.from(text).toString('base64url');
const unb64u = (text: string | undefined) => Buffer.from(text ?? '', 'base64url').toString('utf8');
const kidOf = (compact: string | undefined) =>
  (JSON.parse(Buffer.from((compact ?? '').split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;

function tamper(compact: string, part: number): string {
  const parts = compact.split('.');
  const raw = Buffer.from(parts[part] ?? '', 'base64url');
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 0x01;
  parts[part] = raw.toString('base64url');
  return parts.join('.');
}

describeEachDatabase('crypto batches', (database) => {
  let db: Database;
  let kms: TestKms;
  let audit: AuditLog;
  const lines: string[] = [];

  beforeAll(async () => {
    db = await database.open(KMS_MIGRATIONS);
    const keyHash = await hashPassword(SECRET, 1000);
    const login = createPasswordLogin({
      realms: buildRealms(realmFileSchema.parse({ version: 1, realms: [] }), { demo: false }),
      db,
      lockout: { maxFailures: 5, lockoutMs: 60_000 },
    });
    const authenticate = createAuthenticator({
      methods: ['api_key'],
      login,
      apiKeys: Object.entries(KEYS).map(([id, scopes]) => ({ id, keyHash, scopes })),
      certificates: [],
    });
    audit = new AuditLog(db, 'kms');
    const logger = createLogger({
      service: 'kms',
      level: 'debug',
      stream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    kms = await startTestKms(db, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['ApiKey'] }),
      audit,
      logger,
    });
  });

  const call = (path: string, who: keyof typeof KEYS = 'writer') => kms.api('post', path).set('Authorization', as(who));
  const batch = (path: string, items: unknown[], who: keyof typeof KEYS = 'writer') => call(path, who).send({ items });
  const create = async (algorithm: string) => {
    const res = await call('/elastickey').send({ name: uniquePrefix('batch'), description: '', algorithm });
    expect(res.status).toBe(201);
    return `/elastickey/${String(res.body.elastic_key_id)}`;
  };
  const results = (res: { status: number; body: unknown }): Result[] => {
    expect(res.status).toBe(200);
    return (res.body as { results: Result[] }).results;
  };

  it('encrypts 1,000 items, then decrypts them in order with one tampered item failing alone', async () => {
    const path = await create('A256GCM/dir');
    const rotated = await call(`${path}/materialkey`);
    const items = Array.from({ length: 1000 }, (_, i) => ({
      data: b64u(`plaintext number ${i}`),
      reference: `item-${i}`,
      ...(i % 3 === 0 ? { context: `row-${i}` } : {}),
    }));
    const encrypted = results(await batch(`${path}/encrypt/batch`, items));
    expect(encrypted).toHaveLength(1000);
    encrypted.forEach((result, i) => {
      expect(result.reference).toBe(`item-${i}`);
      expect(result.error).toBeUndefined();
      expect(kidOf(result.jwe)).toBe(rotated.body.material_key_id);
    });
    const tamperedAt = 617;
    const decrypted = results(
      await batch(
        `${path}/decrypt/batch`,
        encrypted.map((result, i) => ({
          jwe: i === tamperedAt ? tamper(result.jwe ?? '', 4) : result.jwe,
          reference: `back-${i}`,
          ...(i % 3 === 0 ? { context: `row-${i}` } : {}),
        })),
      ),
    );
    expect(decrypted).toHaveLength(1000);
    expect(decrypted.filter((result) => result.error === undefined)).toHaveLength(999);
    decrypted.forEach((result, i) => {
      expect(result.reference).toBe(`back-${i}`);
      if (i !== tamperedAt) expect(unb64u(result.data)).toBe(`plaintext number ${i}`);
    });
    expect(decrypted[tamperedAt]).toEqual({
      reference: `back-${tamperedAt}`,
      error: expect.objectContaining({
        type: 'https://cryptoutil.dev/problems/invalid_jwe',
        title: 'Bad Request',
        status: 400,
        code: 'invalid_jwe',
        instance: `/service/api/v1${path}/decrypt/batch`,
      }),
    });
    // The single decrypt says the same about that JWE.
    const single = await call(`${path}/decrypt`)
      .type('text/plain')
      .send(tamper(encrypted[1]?.jwe ?? '', 4));
    expect([single.status, single.body.code]).toEqual([400, decrypted[tamperedAt]?.error?.code]);
  });

  it('refuses 1,001 items naming the limit, and malformed bodies, as whole-call problems', async () => {
    const path = await create('A256GCM/dir');
    const tooMany = await batch(
      `${path}/encrypt/batch`,
      Array.from({ length: 1001 }, () => ({ data: 'AA' })),
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(tooMany.body).toMatchObject({ code: 'batch_too_large', max_items: 1000, field: 'items' });
    expect(tooMany.body.detail).toMatch(/at most 1000 items/);
    const cases: [string, unknown, number, string][] = [
      ['no items', { items: [] }, 400, 'invalid_body'],
      ['items not a list', { items: { data: 'AA' } }, 400, 'invalid_body'],
      ['unknown field', { items: [{ data: 'AA', plaintext: 'x' }] }, 400, 'invalid_body'],
      ['data not a string', { items: [{ data: 42 }] }, 400, 'invalid_body'],
      ['jwe instead of data', { items: [{ jwe: 'a.b.c.d.e' }] }, 400, 'invalid_body'],
      ['unknown top-level field', { items: [{ data: 'AA' }], context: 'x' }, 400, 'invalid_body'],
      ['reference too long', { items: [{ data: 'AA', reference: 'r'.repeat(257) }] }, 400, 'invalid_body'],
    ];
    for (const [name, body, status, code] of cases) {
      const res = await call(`${path}/encrypt/batch`).send(body as object);
      expect([name, res.status, res.body.code]).toEqual([name, status, code]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const notJson = await call(`${path}/encrypt/batch`).set('Content-Type', 'application/json').send('{"items": [');
    expect([notJson.status, notJson.body.code]).toEqual([400, 'invalid_json']);
    const text = await call(`${path}/encrypt/batch`).type('text/plain').send('hello');
    expect([text.status, text.body.code]).toEqual([415, 'unsupported_media_type']);
    const queryContext = await call(`${path}/encrypt/batch?context=x`).send({ items: [{ data: 'AA' }] });
    expect([queryContext.status, queryContext.body.code]).toEqual([400, 'invalid_query']);
    const overLimit = await batch(`${path}/encrypt/batch`, [{ data: 'A'.repeat(1_100_000) }]);
    expect([overLimit.status, overLimit.body.code]).toEqual([413, 'payload_too_large']);
  });

  it("keeps an item's bad base64url, context or JWE to that item", async () => {
    const path = await create('A256GCM/A256KW');
    const other = await create('A256GCM/A256KW');
    const encrypted = results(
      await batch(`${path}/encrypt/batch`, [
        { data: b64u('first'), context: 'c1' },
        { data: 'not base64url!', reference: 'bad' },
        { data: b64u('third'), context: 'x'.repeat(1025), reference: 'long' },
        { data: b64u('padded-'), reference: 'padded' },
        { data: Buffer.from('padded-').toString('base64'), reference: 'padded' },
        { data: '' },
      ]),
    );
    expect(encrypted.map((result) => result.error?.code ?? 'ok')).toEqual([
      'ok',
      'invalid_base64url',
      'invalid_item',
      'ok',
      'ok',
      'ok',
    ]);
    expect(encrypted[1]).toMatchObject({ reference: 'bad', error: { status: 400, field: 'data' } });
    expect(encrypted[0]).not.toHaveProperty('reference');
    const foreign = results(await batch(`${other}/encrypt/batch`, [{ data: b64u('elsewhere') }]))[0]?.jwe;
    const decrypted = results(
      await batch(`${path}/decrypt/batch`, [
        { jwe: encrypted[0]?.jwe, context: 'c2' },
        { jwe: encrypted[0]?.jwe },
        { jwe: encrypted[0]?.jwe, context: 'c1' },
        { jwe: foreign },
        { jwe: 'not a jwe' },
        { jwe: encrypted[3]?.jwe },
        { jwe: encrypted[5]?.jwe },
      ]),
    );
    expect(decrypted.map((result) => result.error?.code ?? unb64u(result.data))).toEqual([
      'invalid_jwe',
      'invalid_jwe',
      'first',
      'invalid_jwe',
      'invalid_jwe',
      'padded-',
      '',
    ]);
  });

  it('rewraps a batch made before a rotation with the newest version, items failing alone', async () => {
    const path = await create('A256GCM/dir');
    const made = results(
      await batch(
        `${path}/encrypt/batch`,
        ['a', 'b', 'c'].map((text) => ({ data: b64u(text), context: `ctx-${text}` })),
      ),
    );
    const latest = await call(`${path}/materialkey`);
    const rewrapped = results(
      await batch(`${path}/rewrap/batch`, [
        { jwe: made[0]?.jwe, context: 'ctx-a', reference: 'a' },
        { jwe: made[1]?.jwe, context: 'ctx-wrong', reference: 'b' },
        { jwe: made[2]?.jwe, context: 'ctx-c', reference: 'c' },
      ]),
    );
    expect(rewrapped.map((result) => [result.reference, result.error?.code ?? 'ok'])).toEqual([
      ['a', 'ok'],
      ['b', 'invalid_jwe'],
      ['c', 'ok'],
    ]);
    expect(kidOf(rewrapped[0]?.jwe)).toBe(latest.body.material_key_id);
    expect(kidOf(made[0]?.jwe)).not.toBe(latest.body.material_key_id);
    const back = results(
      await batch(`${path}/decrypt/batch`, [
        { jwe: rewrapped[0]?.jwe, context: 'ctx-a' },
        { jwe: rewrapped[2]?.jwe, context: 'ctx-c' },
      ]),
    );
    expect(back.map((result) => unb64u(result.data))).toEqual(['a', 'c']);
  });

  it.each(['ES256', 'EdDSA', 'HS256'])(
    '%s: signs a batch and verifies one, a bad signature being the item error signature_invalid as in the single verify',
    async (algorithm) => {
      const path = await create(algorithm);
      const signed = results(
        await batch(
          `${path}/sign/batch`,
          ['x', 'y', 'z'].map((text) => ({ data: b64u(text) })),
        ),
      );
      expect(signed.every((result) => result.jws?.split('.').length === 3)).toBe(true);
      const bad = tamper(signed[1]?.jws ?? '', 2);
      const verified = results(
        await batch(
          `${path}/verify/batch`,
          [signed[0]?.jws, bad, signed[2]?.jws, 'a.b'].map((jws, i) => ({ jws, reference: `v${i}` })),
          'reader',
        ),
      );
      expect(verified[0]).toEqual({ reference: 'v0', valid: true, kid: kidOf(signed[0]?.jws), payload: b64u('x') });
      expect(verified[1]).toMatchObject({ reference: 'v1', error: { status: 400, code: 'signature_invalid' } });
      expect(verified[2]).toMatchObject({ valid: true, payload: b64u('z') });
      expect(verified[3]).toMatchObject({ error: { code: 'invalid_jws' } });
      const single = await call(`${path}/verify`, 'reader').type('text/plain').send(bad);
      expect([single.status, single.body.code]).toEqual([400, 'signature_invalid']);
    },
  );

  it('refuses the whole call when the elastic key refuses the operation', async () => {
    const path = await create('A256GCM/dir');
    const signing = await create('ES256');
    expect((await batch(`${signing}/encrypt/batch`, [{ data: 'AA' }])).body.code).toBe('key_usage_mismatch');
    expect((await batch(`${path}/sign/batch`, [{ data: 'AA' }])).body.code).toBe('key_usage_mismatch');
    expect((await call(`${path}/disable`)).status).toBe(200);
    const disabled = await batch(`${path}/encrypt/batch`, [{ data: 'AA' }]);
    expect([disabled.status, disabled.body.code]).toEqual([409, 'elastic_key_not_active']);
    const missing = await batch('/elastickey/01a20f00-0000-7000-8000-00000000dead/encrypt/batch', [{ data: 'AA' }]);
    expect([missing.status, missing.body.code]).toEqual([404, 'elastic_key_not_found']);
    // Even when no item could be parsed.
    const nothingGood = await batch('/elastickey/01a20f00-0000-7000-8000-00000000dead/encrypt/batch', [{ data: '!' }]);
    expect([nothingGood.status, nothingGood.body.code]).toEqual([404, 'elastic_key_not_found']);
  });

  it('needs the scope of the operation: kms:rewrap rewraps but cannot decrypt, kms:write implies it', async () => {
    const path = await create('A256GCM/dir');
    const jwe = (await call(`${path}/encrypt`).type('text/plain').send('scoped')).text;
    const single = (who: keyof typeof KEYS, operation: string) =>
      call(`${path}/${operation}`, who).type('text/plain').send(jwe);
    const many = (who: keyof typeof KEYS, operation: string) => batch(`${path}/${operation}/batch`, [{ jwe }], who);
    for (const who of ['rewrapper', 'writer'] as const) {
      expect([who, (await single(who, 'rewrap')).status]).toEqual([who, 200]);
      expect([who, (await many(who, 'rewrap')).status]).toEqual([who, 200]);
    }
    for (const [who, operation, scope] of [
      ['rewrapper', 'decrypt', 'kms:decrypt'],
      ['decryptor', 'rewrap', 'kms:rewrap'],
      ['encryptor', 'rewrap', 'kms:rewrap'],
      ['reader', 'rewrap', 'kms:rewrap'],
    ] as const) {
      for (const res of [await single(who, operation), await many(who, operation)]) {
        expect([who, operation, res.status, res.body.required_scope]).toEqual([who, operation, 403, scope]);
        expect(res.headers['www-authenticate']).toContain(`scope="${scope}"`);
      }
    }
    expect((await batch(`${path}/encrypt/batch`, [{ data: 'AA' }], 'encryptor')).status).toBe(200);
    const sign = await batch(`${path}/sign/batch`, [{ data: 'AA' }], 'encryptor');
    expect([sign.status, sign.body.required_scope]).toEqual([403, 'kms:sign']);
  });

  it('writes one audit event per item, with its own outcome, and one for a refused call', async () => {
    const path = await create('A256GCM/dir');
    const keyId = path.split('/').at(-1);
    await audit.flush();
    const start = (await audit.head())?.seq ?? 0;
    results(await batch(`${path}/encrypt/batch`, [{ data: 'AA' }, { data: '!!' }, { data: 'AQ' }, { data: 'Ag' }]));
    const refused = await batch(`${path}/decrypt/batch`, [{ jwe: 'a.b.c.d.e' }], 'encryptor');
    expect(refused.status).toBe(403);
    await audit.flush();
    const records = await audit.list({}, { offset: start, limit: 100 });
    expect(records.map((r) => [r.event, r.actor, r.resource, r.outcome, r.reason])).toEqual([
      ['kms.encrypt', 'api-key/writer', keyId, 'success', null],
      ['kms.encrypt', 'api-key/writer', keyId, 'failure', 'invalid_base64url'],
      ['kms.encrypt', 'api-key/writer', keyId, 'success', null],
      ['kms.encrypt', 'api-key/writer', keyId, 'success', null],
      ['kms.decrypt', 'api-key/encryptor', keyId, 'failure', 'insufficient_scope'],
    ]);
    expect(new Set(records.slice(0, 4).map((r) => r.request_id)).size).toBe(1);
    expect((await kms.admin('get', '/admin/v1/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('never writes a plaintext to the logs or the audit table, in any encoding, on success or failure', async () => {
    const path = await create('A256GCM/A256KW');
    const secret = `canary-${uniquePrefix('plaintext')}-ÿ`;
    const bytes = Buffer.from(secret, 'utf8');
    const jwe = (await call(`${path}/encrypt?context=leak`).type('text/plain').send(secret)).text;
    await call(`${path}/materialkey`);
    expect((await call(`${path}/rewrap?context=leak`).type('text/plain').send(jwe)).status).toBe(200);
    expect((await call(`${path}/rewrap?context=wrong`).type('text/plain').send(jwe)).status).toBe(400);
    const items = [
      { jwe, context: 'leak' },
      { jwe, context: 'wrong' },
      { jwe: tamper(jwe, 3), context: 'leak' },
    ];
    expect(results(await batch(`${path}/rewrap/batch`, items)).map((r) => r.error?.code ?? 'ok')).toEqual([
      'ok',
      'invalid_jwe',
      'invalid_jwe',
    ]);
    expect(results(await batch(`${path}/decrypt/batch`, items)).map((r) => r.error?.code ?? 'ok')).toEqual([
      'ok',
      'invalid_jwe',
      'invalid_jwe',
    ]);
    const encrypted = results(
      await batch(`${path}/encrypt/batch`, [{ data: bytes.toString('base64url'), context: 'x'.repeat(1025) }]),
    );
    expect(encrypted[0]?.error?.code).toBe('invalid_item');
    expect((await batch(`${path}/encrypt/batch`, [{ data: bytes.toString('base64url'), secret }])).status).toBe(400);
    await audit.flush();
    const stored = JSON.stringify(await db.all(sql`SELECT * FROM kms_audit_log`));
    const logged = lines.join('\n');
    expect(logged.length).toBeGreaterThan(0);
    const forms = [
      secret,
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
      JSON.stringify(secret).slice(1, -1),
    ];
    for (const form of forms) {
      expect([form, logged.includes(form)]).toEqual([form, false]);
      expect([form, stored.includes(form)]).toEqual([form, false]);
    }
  });
});
