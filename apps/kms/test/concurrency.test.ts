/**
 * Concurrency (issue #10): fifty rotations and fifty encrypts at once on one elastic key lose no version,
 * leak no database error (no SQLITE_BUSY, no serialization failure), and every ciphertext decrypts.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

const binary = (res: { body: unknown }) => Buffer.from(res.body as Buffer).toString('utf8');

describeEachDatabase('concurrent rotations and encrypts on one key', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });

  it('keeps every version and decrypts every ciphertext', async () => {
    const created = await kms
      .api('post', '/elastickey')
      .send({ name: uniquePrefix('busy'), description: '', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    const id = String(created.body.elastic_key_id);
    const work = Array.from({ length: 100 }, (_, n) =>
      n % 2 === 0
        ? kms.api('post', `/elastickey/${id}/materialkey`)
        : kms.api('post', `/elastickey/${id}/encrypt`).type('text/plain').send(`message ${n}`),
    );
    const answers = await Promise.all(work);
    const rotations = answers.filter((_, n) => n % 2 === 0);
    const encrypts = answers.filter((_, n) => n % 2 === 1);
    expect(rotations.map((res) => res.status)).toEqual(Array(50).fill(201));
    expect(encrypts.map((res) => res.status)).toEqual(Array(50).fill(200));

    const versions = await kms.api('get', `/elastickey/${id}/materialkeys?size=100`);
    const ids = (versions.body.items as { material_key_id: string }[]).map((item) => item.material_key_id);
    expect(new Set(ids).size).toBe(51);
    for (const rotation of rotations) expect(ids).toContain(rotation.body.material_key_id);

    const decrypted = await Promise.all(
      encrypts.map((res) =>
        kms.api('post', `/elastickey/${id}/decrypt`).type('application/jose').send(res.text).responseType('blob'),
      ),
    );
    expect(decrypted.map((res) => [res.status, binary(res)])).toEqual(
      encrypts.map((_, i) => [200, `message ${i * 2 + 1}`]),
    );
  }, 60_000);
});
