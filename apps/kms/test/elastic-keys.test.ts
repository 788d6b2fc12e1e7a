import { expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { destroyExpiredElasticKeys } from '../src/domain/elastic-key.js';
import { startTestKms, type TestKms } from './harness.js';

async function create(kms: TestKms, body: Record<string, unknown>) {
  const res = await kms.api('post', '/elastickey').send({ name: uniquePrefix('key'), description: 'd', ...body });
  expect(res.status).toBe(201);
  return res.body as { elastic_key_id: string; name: string; status: string; material_key_count: number };
}

async function rowCounts(kms: TestKms) {
  const [elastic] = await kms.ctx.db.all<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${kms.ctx.tables.elasticKeys}`);
  const [material] = await kms.ctx.db.all<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${kms.ctx.tables.materialKeys}`);
  return [Number(elastic?.n), Number(material?.n)];
}

describeEachDatabase('elastic keys', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });

  it('creates an elastic key with its first material key, and reads it back', async () => {
    const created = await create(kms, { algorithm: 'A256GCM/A256KW' });
    expect(created).toMatchObject({
      provider: 'Internal',
      algorithm: 'A256GCM/A256KW',
      versioning_allowed: true,
      import_allowed: false,
      status: 'active',
      material_key_count: 1,
      latest_version: 1,
      min_decryption_version: 1,
      min_encryption_version: 0,
      rotation_period: null,
      max_encryptions: null,
    });
    expect(Object.keys(created).sort()).toEqual(
      [
        'algorithm',
        'created_at',
        'description',
        'elastic_key_id',
        'import_allowed',
        'latest_version',
        'material_key_count',
        'max_encryptions',
        'min_decryption_version',
        'min_encryption_version',
        'name',
        'rotation_period',
        'provider',
        'status',
        'updated_at',
        'versioning_allowed',
      ].sort(),
    );
    const got = await kms.api('get', `/elastickey/${created.elastic_key_id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created);
  });

  it('creates an import-only key in pending_import without material', async () => {
    const created = await create(kms, { algorithm: 'ES256', import_allowed: true });
    expect(created).toMatchObject({ status: 'pending_import', material_key_count: 0 });
  });

  it('updates name and description; a taken name is 409', async () => {
    const a = await create(kms, { algorithm: 'HS256' });
    const b = await create(kms, { algorithm: 'HS256' });
    const renamed = await kms
      .api('put', `/elastickey/${a.elastic_key_id}`)
      .send({ name: `${a.name}-x`, description: 'new' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: `${a.name}-x`, description: 'new' });
    const taken = await kms.api('put', `/elastickey/${a.elastic_key_id}`).send({ name: b.name, description: 'x' });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('elastic_key_name_taken');
    const duplicate = await kms.api('post', '/elastickey').send({ name: b.name, description: '', algorithm: 'HS256' });
    expect(duplicate.status).toBe(409);
  });

  it.each([
    ['malformed JSON', '{"name":', 'application/json', 400, 'invalid_json'],
    [
      'an unknown field',
      { name: 'n', description: '', algorithm: 'HS256', color: 'red' },
      'application/json',
      400,
      'invalid_body',
    ],
    ['a missing field', { name: 'n', algorithm: 'HS256' }, 'application/json', 400, 'invalid_body'],
    [
      'a wrong type',
      { name: 'n', description: '', algorithm: 'HS256', import_allowed: 'yes' },
      'application/json',
      400,
      'invalid_body',
    ],
    [
      'an unknown algorithm',
      { name: 'n', description: '', algorithm: 'A256GCM/A512KW' },
      'application/json',
      400,
      'algorithm_unsupported',
    ],
    [
      'RSA1_5',
      { name: 'n', description: '', algorithm: 'A256GCM/RSA1_5' },
      'application/json',
      400,
      'algorithm_unsupported',
    ],
    [
      'another provider',
      { name: 'n', description: '', algorithm: 'HS256', provider: 'AWS' },
      'application/json',
      400,
      'provider_unsupported',
    ],
    ['a text body', 'name=n', 'text/plain', 415, 'unsupported_media_type'],
  ])('refuses %s with problem+json and changes nothing', async (_case, body, type, status, code) => {
    const before = await rowCounts(kms);
    const res = await kms
      .api('post', '/elastickey')
      .set('Content-Type', type)
      .send(typeof body === 'string' ? body : JSON.stringify(body));
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe(code);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+|stack/i);
    expect(await rowCounts(kms)).toEqual(before);
  });

  it('answers 404 for an unknown key and 400 for a malformed id', async () => {
    const missing = await kms.api('get', '/elastickey/0190a8c2-0000-7000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('elastic_key_not_found');
    const bad = await kms.api('get', '/elastickey/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('invalid_id');
  });

  it('lists with every filter, sort and paging', async () => {
    const family = uniquePrefix('list');
    const made = [];
    for (const [suffix, algorithm, versioning] of [
      ['a', 'ES384', true],
      ['b', 'ES384', false],
      ['c', 'HS512', true],
    ] as const) {
      made.push(await create(kms, { name: `${family}-${suffix}`, algorithm, versioning_allowed: versioning }));
    }
    const names = made.map((key) => `name=${key.name}`).join('&');
    const all = await kms.api('get', `/elastickeys?${names}&sort=name:DESC`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ page: 0, size: 25, total: 3 });
    expect(all.body.items.map((key: { name: string }) => key.name)).toEqual([
      `${family}-c`,
      `${family}-b`,
      `${family}-a`,
    ]);
    const es384 = await kms.api('get', `/elastickeys?${names}&algorithm=ES384&versioning_allowed=false`);
    expect(es384.body.items.map((key: { name: string }) => key.name)).toEqual([`${family}-b`]);
    const byId = await kms.api(
      'get',
      `/elastickeys?elastic_key_id=${made[2]?.elastic_key_id}&provider=Internal&import_allowed=false`,
    );
    expect(byId.body.total).toBe(1);
    const paged = await kms.api('get', `/elastickeys?${names}&sort=name:ASC&page=1&size=2`);
    expect(paged.body).toMatchObject({ page: 1, size: 2, total: 3 });
    expect(paged.body.items.map((key: { name: string }) => key.name)).toEqual([`${family}-c`]);
    await kms.api('post', `/elastickey/${made[0]?.elastic_key_id}/disable`);
    const disabled = await kms.api('get', `/elastickeys?${names}&status=disabled&status=pending_import`);
    expect(disabled.body.items.map((key: { name: string }) => key.name)).toEqual([`${family}-a`]);
    for (const query of [
      'size=0',
      'size=1001',
      'page=-1',
      'sort=name',
      'sort=secret:ASC',
      'status=gone',
      'versioning_allowed=yes',
      'elastic_key_id=x',
    ]) {
      const res = await kms.api('get', `/elastickeys?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, 'invalid_query']);
    }
  });

  it('moves through the status machine: disable, enable, delete, undelete; invalid transitions are 409', async () => {
    const key = await create(kms, { algorithm: 'A128GCM/dir' });
    const path = `/elastickey/${key.elastic_key_id}`;
    expect((await kms.api('post', `${path}/enable`)).status).toBe(409);
    const disabled = await kms.api('post', `${path}/disable`);
    expect(disabled.body.status).toBe('disabled');
    const refused = await kms.api('post', `${path}/encrypt`).set('Content-Type', 'text/plain').send('x');
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('elastic_key_not_active');
    expect((await kms.api('post', `${path}/enable`)).body.status).toBe('active');
    const deleted = await kms.api('delete', path);
    expect(deleted.status).toBe(202);
    expect(deleted.body.status).toBe('pending_delete_was_active');
    expect((await kms.api('post', `${path}/encrypt`).set('Content-Type', 'text/plain').send('x')).status).toBe(409);
    expect((await kms.api('post', `${path}/disable`)).body.code).toBe('invalid_status_transition');
    expect((await kms.api('delete', path)).status).toBe(409);
    expect((await kms.api('post', `${path}/undelete`)).body.status).toBe('active');
    expect((await kms.api('post', `${path}/undelete`)).status).toBe(409);
  });

  it('destroys material only after the grace period; then undelete is refused', async () => {
    const key = await create(kms, { algorithm: 'A256GCM/dir' });
    const path = `/elastickey/${key.elastic_key_id}`;
    await kms.api('post', `${path}/disable`);
    expect((await kms.api('delete', path)).body.status).toBe('pending_delete_was_disabled');
    const start = kms.clock.now;
    try {
      kms.clock.now = new Date(start.getTime() + kms.ctx.deleteGracePeriodMs - 1000);
      expect(await destroyExpiredElasticKeys(kms.ctx)).not.toContain(key.elastic_key_id);
      kms.clock.now = new Date(start.getTime() + kms.ctx.deleteGracePeriodMs + 1000);
      expect(await destroyExpiredElasticKeys(kms.ctx)).toContain(key.elastic_key_id);
    } finally {
      kms.clock.now = start;
    }
    expect((await kms.api('get', path)).body.status).toBe('finished_delete');
    expect((await kms.api('post', `${path}/undelete`)).status).toBe(409);
    const [row] = await kms.ctx.db.all<{ n: number }>(
      sql`SELECT COUNT(*) AS n FROM ${kms.ctx.tables.materialKeys} WHERE elastic_key_id = ${key.elastic_key_id} AND jwe IS NOT NULL`,
    );
    expect(Number(row?.n)).toBe(0);
  });

  it('refuses bodies over the limit with 413', async () => {
    const small = await startTestKms(kms.service.db, { bodyLimitBytes: 1024 });
    const res = await small
      .api('post', '/elastickey')
      .send({ name: 'x'.repeat(2048), description: '', algorithm: 'HS256' });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('payload_too_large');
  });
});
