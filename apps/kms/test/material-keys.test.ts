import { expect, it } from '@jest/globals';
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

async function create(kms: TestKms, algorithm: string, extra: Record<string, unknown> = {}) {
  const res = await kms
    .api('post', '/elastickey')
    .send({ name: uniquePrefix('mk'), description: '', algorithm, ...extra });
  expect(res.status).toBe(201);
  return res.body.elastic_key_id as string;
}

async function publicEcJwk(): Promise<Record<string, unknown>> {
  const { publicKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
  return publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
}

describeEachDatabase('material keys', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });

  it('generates versions, reads one and lists them with filters, sort and paging', async () => {
    const id = await create(kms, 'HS384');
    const first = (await kms.api('get', `/elastickey/${id}/materialkeys`)).body.items[0];
    const second = await kms.api('post', `/elastickey/${id}/materialkey`);
    expect(second.status).toBe(201);
    expect(Object.keys(second.body).sort()).toEqual(
      [
        'clear_public',
        'destroy_date',
        'elastic_key_id',
        'encryption_count',
        'expiration_date',
        'generate_date',
        'import_date',
        'material_key_id',
        'public_only',
        'revocation_date',
        'version',
      ].sort(),
    );
    expect(first.version).toBe(1);
    expect(second.body).toMatchObject({
      elastic_key_id: id,
      version: 2,
      destroy_date: null,
      encryption_count: 0,
      clear_public: null,
      import_date: null,
      revocation_date: null,
      public_only: false,
    });
    const got = await kms.api('get', `/elastickey/${id}/materialkey/${second.body.material_key_id}`);
    expect(got.body).toEqual(second.body);
    const list = await kms.api('get', `/elastickey/${id}/materialkeys?sort=material_key_id:DESC&size=1`);
    expect(list.body).toMatchObject({ total: 2, size: 1, page: 0 });
    expect(list.body.items[0].material_key_id).toBe(second.body.material_key_id);
    const byId = await kms.api('get', `/materialkeys?material_key_id=${first.material_key_id}`);
    expect(byId.body.items.map((m: { material_key_id: string }) => m.material_key_id)).toEqual([first.material_key_id]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await kms.api('get', `/elastickey/${id}/materialkeys?min_generate_date=${future}`)).body.total).toBe(0);
    expect((await kms.api('get', `/elastickey/${id}/materialkeys?max_generate_date=${future}`)).body.total).toBe(2);
    expect((await kms.api('get', `/elastickey/${id}/materialkeys?min_import_date=2000-01-01`)).body.total).toBe(0);
    expect((await kms.api('get', `/elastickey/${id}/materialkeys?max_import_date=2000-01-01`)).body.total).toBe(0);
    expect((await kms.api('get', `/elastickey/${id}/materialkeys?min_generate_date=yesterday`)).body.code).toBe(
      'invalid_query',
    );
    expect((await kms.api('get', `/elastickey/${id}/materialkey/0190a8c2-0000-7000-8000-000000000000`)).body.code).toBe(
      'material_key_not_found',
    );
    expect((await kms.api('get', `/elastickey/0190a8c2-0000-7000-8000-000000000000/materialkeys`)).status).toBe(404);
  });

  it('refuses a second version with 409 when versioning is off', async () => {
    const id = await create(kms, 'ES256', { versioning_allowed: false });
    const res = await kms.api('post', `/elastickey/${id}/materialkey`);
    expect([res.status, res.body.code]).toEqual([409, 'versioning_not_allowed']);
  });

  // Wrapped (private) imports and the refusal of clear private keys: import-wrapping.test.ts.
  it('imports a validated public JWK only where import is allowed', async () => {
    const jwk = await publicEcJwk();
    const closed = await create(kms, 'ES256');
    const forbidden = await kms.api('post', `/elastickey/${closed}/materialkey`).send({ jwk });
    expect([forbidden.status, forbidden.body.code]).toEqual([403, 'import_not_allowed']);

    const open = await create(kms, 'ES256', { import_allowed: true });
    const notYet = await kms.api('post', `/elastickey/${open}/sign`).set('Content-Type', 'text/plain').send('x');
    expect(notYet.body.code).toBe('elastic_key_not_active');
    for (const [bad, code] of [
      [{ ...jwk, x: 'AAAA' }, 'invalid_jwk'],
      [{ kty: 'RSA', n: 'AAAA', e: 'AQAB' }, 'invalid_jwk'],
      [{ ...jwk, crv: 'P-384' }, 'invalid_jwk'],
    ] as const) {
      const res = await kms.api('post', `/elastickey/${open}/materialkey`).send({ jwk: bad });
      expect([res.status, res.body.code]).toEqual([400, code]);
    }
    const unknownField = await kms.api('post', `/elastickey/${open}/materialkey`).send({ jwk, extra: 1 });
    expect(unknownField.body.code).toBe('invalid_body');
    const imported = await kms.api('post', `/elastickey/${open}/materialkey`).send({ jwk });
    expect(imported.status).toBe(201);
    expect(imported.body.import_date).toEqual(expect.any(String));
    expect(imported.body.public_only).toBe(true);
    expect(imported.body.clear_public).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: jwk.x,
      y: jwk.y,
      kid: imported.body.material_key_id,
      alg: 'ES256',
      use: 'sig',
    });
    expect((await kms.api('get', `/elastickey/${open}`)).body.status).toBe('active');
    const signed = await kms.api('post', `/elastickey/${open}/sign`).set('Content-Type', 'text/plain').send('imported');
    expect([signed.status, signed.body.code]).toEqual([409, 'material_key_public_only']);
  });

  it('refuses crypto when every version is revoked', async () => {
    const id = await create(kms, 'EdDSA');
    const [material] = (await kms.api('get', `/elastickey/${id}/materialkeys`)).body.items;
    await kms.api('post', `/elastickey/${id}/materialkey/${material.material_key_id}/revoke`);
    const res = await kms.api('post', `/elastickey/${id}/sign`).set('Content-Type', 'text/plain').send('x');
    expect([res.status, res.body.code]).toEqual([409, 'no_usable_material_key']);
    expect(JSON.parse((await kms.api('get', `/elastickey/${id}/jwks`)).text)).toEqual({ keys: [] });
  });
});
