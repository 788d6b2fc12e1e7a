import { expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { Barrier } from '../src/barrier/barrier.js';
import { UnsealError, deriveUnsealKeys } from '../src/barrier/unseal.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { POLICY, SECRETS, startTestKms, type TestKms } from './harness.js';

async function counts(kms: TestKms) {
  const tables = ['kms_root_keys', 'kms_root_key_wraps', 'kms_intermediate_keys', 'kms_content_keys'];
  const result: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await kms.ctx.db.all<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${sql.raw(table)}`);
    result[table] = Number(row?.n);
  }
  {
    const [row] = await kms.ctx.db.all<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${kms.ctx.tables.materialKeys}`);
    result.kms_material_keys = Number(row?.n);
  }
  return result;
}

describeEachDatabase('barrier', (db) => {
  let kms: TestKms;
  let keyPath: string;
  let jwe: string;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
    const res = await kms
      .api('post', '/elastickey')
      .send({ name: uniquePrefix('b'), description: '', algorithm: 'A256GCM/dir' });
    keyPath = `/elastickey/${res.body.elastic_key_id as string}`;
    jwe = (await kms.api('post', `${keyPath}/encrypt`).set('Content-Type', 'text/plain').send('kept')).text;
  });

  it('creates one hierarchy, the root wrapped under each of the ten 3-of-5 unseal keys', async () => {
    expect(await counts(kms)).toMatchObject({
      kms_root_keys: 1,
      kms_root_key_wraps: 10,
      kms_intermediate_keys: 1,
      kms_content_keys: 1,
    });
  });

  it('unseals again with any 3 of the 5 secrets and keeps every key usable', async () => {
    const again = await Barrier.unseal(
      kms.service.db,
      deriveUnsealKeys(POLICY, [SECRETS[4]!, SECRETS[0]!, SECRETS[2]!]),
      {
        allSharesGiven: false,
      },
    );
    const restarted = { ...kms.ctx, barrier: again };
    const { decrypt } = await import('../src/domain/decrypt.js');
    expect(Buffer.from(await decrypt(restarted, keyPath.split('/')[2]!, jwe)).toString()).toBe('kept');
    await expect(again.rotate('root')).rejects.toMatchObject({ status: 409, code: 'all_unseal_secrets_required' });
  });

  it('refuses other secrets or too few, and changes nothing', async () => {
    const before = await counts(kms);
    const others = [1, 2, 3, 4, 5].map((n) => Buffer.from(`a-different-deployment-unseal-secret-${n}-xxxxxxxx`));
    await expect(
      Barrier.unseal(kms.service.db, deriveUnsealKeys(POLICY, others), { allSharesGiven: true }),
    ).rejects.toMatchObject({
      code: 'unseal_failed',
    });
    expect(() => deriveUnsealKeys(POLICY, SECRETS.slice(0, 2))).toThrow(UnsealError);
    expect(await counts(kms)).toEqual(before);
  });

  it('rotates each tier through the admin API without re-encrypting data', async () => {
    for (const tier of ['content', 'intermediate', 'root'] as const) {
      const res = await kms.admin('post', `/admin/v1/barrier/${tier}/rotate`);
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ tier, key_id: expect.any(String) });
    }
    expect((await kms.admin('post', '/admin/v1/barrier/galaxy/rotate')).body.code).toBe('invalid_tier');
    const rotated = await counts(kms);
    expect(rotated).toMatchObject({
      kms_root_keys: 2,
      kms_root_key_wraps: 20,
      kms_intermediate_keys: 2,
      kms_content_keys: 2,
    });
    // New material is wrapped under the newest content key; the old ciphertext still decrypts.
    await kms.api('post', `${keyPath}/materialkey`);
    await kms.admin('post', '/admin/v1/barrier/content/rotate');
    await kms.admin('post', '/admin/v1/barrier/intermediate/rotate');
    const fresh = await Barrier.unseal(kms.service.db, deriveUnsealKeys(POLICY, SECRETS.slice(1, 4)), {
      allSharesGiven: false,
    });
    const { decrypt } = await import('../src/domain/decrypt.js');
    expect(Buffer.from(await decrypt({ ...kms.ctx, barrier: fresh }, keyPath.split('/')[2]!, jwe)).toString()).toBe(
      'kept',
    );
    const newJwe = (await kms.api('post', `${keyPath}/encrypt`).set('Content-Type', 'text/plain').send('new')).text;
    expect(Buffer.from(await decrypt({ ...kms.ctx, barrier: fresh }, keyPath.split('/')[2]!, newJwe)).toString()).toBe(
      'new',
    );
  });

  it('a second instance on the same database sees rotations made by the first', async () => {
    const second = await Barrier.unseal(kms.service.db, deriveUnsealKeys(POLICY, SECRETS), { allSharesGiven: true });
    await kms.ctx.barrier.rotate('root');
    await kms.ctx.barrier.rotate('intermediate');
    await kms.ctx.barrier.rotate('content');
    const material = await second.wrap({ kty: 'oct', k: 'AAAA' });
    expect(await kms.ctx.barrier.unwrap('m-1', material.jwe)).toEqual({ kty: 'oct', k: 'AAAA' });
  });

  it('reports readiness with the barrier state and refuses work once sealed', async () => {
    const ready = await kms.admin('get', '/admin/v1/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.barrier).toMatchObject({ status: 'ok', sealed: false });
    expect(ready.body.checks.database.status).toBe('ok');
    expect((await kms.admin('get', '/admin/v1/livez')).body).toMatchObject({
      status: 'ok',
      probe: 'liveness',
      service: 'kms',
    });
    expect(kms.ctx.barrier.cachedKeys).toBeGreaterThan(0);
    kms.ctx.barrier.seal();
    expect(kms.ctx.barrier.cachedKeys).toBe(0);
    const degraded = await kms.admin('get', '/admin/v1/readyz');
    expect([degraded.status, degraded.body.status]).toEqual([503, 'degraded']);
    const refused = await kms.api('post', `${keyPath}/materialkey`);
    expect([refused.status, refused.body.code]).toEqual([503, 'barrier_sealed']);
  });
});

describeEachDatabase('barrier first start', (db) => {
  it('needs every secret to create the hierarchy', async () => {
    const fresh = await db.open(KMS_MIGRATIONS);
    await expect(
      Barrier.unseal(fresh, deriveUnsealKeys(POLICY, SECRETS.slice(0, 3)), { allSharesGiven: false }),
    ).rejects.toMatchObject({ code: 'all_unseal_secrets_required' });
    const [row] = await fresh.all<{ n: number }>(sql`SELECT COUNT(*) AS n FROM kms_root_keys`);
    expect(Number(row?.n)).toBe(0);
  });
});
