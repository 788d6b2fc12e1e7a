/**
 * Versions (kms.md "Beyond the anchors"): numbered material keys, min_decryption_version and
 * min_encryption_version, encrypt/sign with a chosen version, and trim.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { isUniqueViolation, migrate } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS, KMS_TENANT_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

const CIPHERTEXTS = 10_000;
const ROTATIONS = 5;

async function createKey(kms: TestKms, algorithm: string): Promise<string> {
  const res = await kms.api('post', '/elastickey').send({ name: uniquePrefix('versions'), description: '', algorithm });
  expect(res.status).toBe(201);
  return String(res.body.elastic_key_id);
}

async function versionsByKid(kms: TestKms, id: string): Promise<Map<string, number>> {
  const res = await kms.api('get', `/elastickey/${id}/materialkeys?size=1000`);
  return new Map(
    (res.body.items as { material_key_id: string; version: number }[]).map((item) => [
      item.material_key_id,
      item.version,
    ]),
  );
}

/** `PUT /elastickey/{id}` keeping a name of its own (names are unique per tenant). */
const put = (kms: TestKms, id: string, settings: Record<string, unknown>) =>
  kms.api('put', `/elastickey/${id}`).send({ name: `key-${id}`, description: '', ...settings });

const kidOf = (compact: string) =>
  String((JSON.parse(Buffer.from(compact.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid);

interface BatchResult {
  jwe?: string;
  data?: string;
  error?: { code?: string };
}

describeEachDatabase('key versions', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });
  /** Items through the batch route, 1,000 per call (the contract's limit), results in order. */
  async function batch(id: string, operation: 'encrypt' | 'decrypt', items: object[]): Promise<BatchResult[]> {
    const results: BatchResult[] = [];
    for (let start = 0; start < items.length; start += 1000) {
      const res = await kms
        .api('post', `/elastickey/${id}/${operation}/batch`)
        .send({ items: items.slice(start, start + 1000) });
      expect(res.status).toBe(200);
      results.push(...(res.body.results as BatchResult[]));
    }
    return results;
  }

  it('decrypts 10,000 ciphertexts made across 5 rotations; min_decryption_version refuses, restores, trim destroys', async () => {
    const id = await createKey(kms, 'A256GCM/dir');
    const made: { plaintext: string; jwe: string }[] = [];
    for (let round = 0; round <= ROTATIONS; round += 1) {
      const count = Math.floor(CIPHERTEXTS / (ROTATIONS + 1)) + (round < CIPHERTEXTS % (ROTATIONS + 1) ? 1 : 0);
      const plaintexts = Array.from({ length: count }, (_, n) => `round ${round} message ${n}`);
      const sealed = await batch(
        id,
        'encrypt',
        plaintexts.map((text) => ({ data: Buffer.from(text).toString('base64url') })),
      );
      expect(sealed.filter((result) => result.jwe === undefined)).toEqual([]);
      sealed.forEach((result, n) => made.push({ plaintext: plaintexts[n] as string, jwe: result.jwe as string }));
      if (round < ROTATIONS) {
        const rotated = await kms.api('post', `/elastickey/${id}/materialkey`);
        expect([rotated.status, rotated.body.version]).toEqual([201, round + 2]);
      }
    }
    expect(made).toHaveLength(CIPHERTEXTS);
    const versions = await versionsByKid(kms, id);
    const versionOf = made.map((item) => versions.get(kidOf(item.jwe)) ?? 0);
    expect(new Set(versionOf)).toEqual(new Set([1, 2, 3, 4, 5, 6]));

    const opened = (items: typeof made) =>
      batch(
        id,
        'decrypt',
        items.map((item) => ({ jwe: item.jwe })),
      ).then((results) =>
        results.map((result, n) =>
          result.data === undefined
            ? result.error?.code
            : Buffer.from(result.data, 'base64url').toString() === items[n]?.plaintext,
        ),
      );
    const decryptAll = () => opened(made);

    expect(await decryptAll()).toEqual(made.map(() => true));

    const raise = await put(kms, id, { min_decryption_version: 4 });
    expect([raise.status, raise.body.min_decryption_version, raise.body.latest_version]).toEqual([200, 4, 6]);
    expect(await decryptAll()).toEqual(
      versionOf.map((version) => (version >= 4 ? true : 'material_key_below_min_version')),
    );
    const refused = await kms.api('post', `/elastickey/${id}/decrypt`).type('text/plain').send(made[0]?.jwe);
    expect([refused.status, refused.headers['content-type']]).toEqual([409, 'application/problem+json; charset=utf-8']);

    // Raising the minimum deleted nothing: lowering it makes every ciphertext work again.
    const lower = await put(kms, id, { min_decryption_version: 1 });
    expect(lower.status).toBe(200);
    expect(await decryptAll()).toEqual(made.map(() => true));

    // Trim destroys the versions below the minimum; lowering it again brings nothing back.
    await put(kms, id, { min_decryption_version: 4 });
    const trim = await kms.api('post', `/elastickey/${id}/trim`);
    expect([trim.status, trim.body.destroyed_versions]).toEqual([200, [1, 2, 3]]);
    expect(trim.body.elastic_key).toMatchObject({ elastic_key_id: id, material_key_count: 6 });
    const listed = await kms.api('get', `/elastickey/${id}/materialkeys?sort=version:ASC`);
    expect(
      listed.body.items.map((item: { version: number; destroy_date: string | null }) => item.destroy_date !== null),
    ).toEqual([true, true, true, false, false, false]);
    await put(kms, id, { min_decryption_version: 1 });
    // Every tenth ciphertext (1,000, all six versions) is enough to show which versions are gone.
    const sample = made.filter((_, n) => n % 10 === 0);
    expect(await opened(sample)).toEqual(
      versionOf.filter((_, n) => n % 10 === 0).map((version) => (version >= 4 ? true : 'material_key_destroyed')),
    );
    expect((await kms.api('post', `/elastickey/${id}/trim`)).body.destroyed_versions).toEqual([]);
  }, 600_000);

  it('encrypts and signs with a requested version, within the minimums', async () => {
    const id = await createKey(kms, 'A256GCM/A256KW');
    for (let n = 0; n < 3; n += 1) expect((await kms.api('post', `/elastickey/${id}/materialkey`)).status).toBe(201);
    const versions = await versionsByKid(kms, id);
    const encryptWith = (version: string) =>
      kms.api('post', `/elastickey/${id}/encrypt?version=${version}`).type('text/plain').send('hello');

    const latest = await kms.api('post', `/elastickey/${id}/encrypt`).type('text/plain').send('hello');
    expect(versions.get(kidOf(latest.text))).toBe(4);
    const second = await encryptWith('2');
    expect([second.status, versions.get(kidOf(second.text))]).toEqual([200, 2]);
    const decrypted = await kms.api('post', `/elastickey/${id}/decrypt`).type('text/plain').send(second.text);
    expect(Buffer.from(decrypted.body as Buffer).toString()).toBe('hello');

    const unknown = await encryptWith('9');
    expect([unknown.status, unknown.body.code]).toEqual([404, 'material_key_not_found']);
    for (const bad of ['0', 'x', '-1', '1.5']) {
      const res = await encryptWith(bad);
      expect([bad, res.status, res.body.code, res.body.field]).toEqual([bad, 400, 'invalid_query', 'version']);
    }

    const minimums = await put(kms, id, { min_decryption_version: 2, min_encryption_version: 3 });
    expect([minimums.status, minimums.body.min_decryption_version, minimums.body.min_encryption_version]).toEqual([
      200, 2, 3,
    ]);
    const belowEncryption = await encryptWith('2');
    expect([belowEncryption.status, belowEncryption.body.code]).toEqual([409, 'material_key_below_min_version']);
    const belowDecryption = await encryptWith('1');
    expect([belowDecryption.status, belowDecryption.body.code]).toEqual([409, 'material_key_below_min_version']);
    expect(versions.get(kidOf((await encryptWith('3')).text))).toBe(3);
    // Made with version 2 before the minimum rose to 2: still decrypts (2 is not below 2).
    expect((await kms.api('post', `/elastickey/${id}/decrypt`).type('text/plain').send(second.text)).status).toBe(200);

    const signer = await createKey(kms, 'ES256');
    expect((await kms.api('post', `/elastickey/${signer}/materialkey`)).status).toBe(201);
    const signerVersions = await versionsByKid(kms, signer);
    const old = await kms.api('post', `/elastickey/${signer}/sign?version=1`).type('text/plain').send('doc');
    expect([old.status, signerVersions.get(kidOf(old.text))]).toEqual([200, 1]);
    const fresh = await kms.api('post', `/elastickey/${signer}/sign`).type('text/plain').send('doc');
    expect(signerVersions.get(kidOf(fresh.text))).toBe(2);
    await put(kms, signer, { min_decryption_version: 2 });
    const verifyOld = await kms.api('post', `/elastickey/${signer}/verify`).type('text/plain').send(old.text);
    expect([verifyOld.status, verifyOld.body.code]).toEqual([409, 'material_key_below_min_version']);
    const verifyFresh = await kms.api('post', `/elastickey/${signer}/verify`).type('text/plain').send(fresh.text);
    expect([verifyFresh.status, verifyFresh.body.valid]).toEqual([200, true]);
    const signOld = await kms.api('post', `/elastickey/${signer}/sign?version=1`).type('text/plain').send('doc');
    expect([signOld.status, signOld.body.code]).toEqual([409, 'material_key_below_min_version']);
    // The JWKS no longer offers the version that verify refuses.
    const jwks = await kms.api('get', `/elastickey/${signer}/jwks`);
    expect(JSON.parse(jwks.text).keys.map((key: { kid: string }) => signerVersions.get(key.kid))).toEqual([2]);
  });

  it('refuses bad settings with problem+json naming the field', async () => {
    const id = await createKey(kms, 'A128GCM/dir');
    const signer = await createKey(kms, 'HS256');
    const cases: [string, Record<string, unknown>, string][] = [
      [id, { min_decryption_version: 2 }, 'min_decryption_version'],
      [id, { min_decryption_version: 0 }, 'min_decryption_version'],
      [id, { min_encryption_version: 2 }, 'min_encryption_version'],
      [id, { min_encryption_version: -1 }, 'min_encryption_version'],
      [id, { rotation_period: 'PT30M' }, 'rotation_period'],
      [id, { rotation_period: 'P1X' }, 'rotation_period'],
      [id, { rotation_period: 'P' }, 'rotation_period'],
      [id, { rotation_period: 'PT' }, 'rotation_period'],
      [id, { rotation_period: 3600 }, 'rotation_period'],
      [id, { max_encryptions: 0 }, 'max_encryptions'],
      [id, { max_encryptions: 2 ** 32 + 1 }, 'max_encryptions'],
      [id, { max_encryptions: 1.5 }, 'max_encryptions'],
      [signer, { max_encryptions: 10 }, 'max_encryptions'],
    ];
    for (const [key, settings, field] of cases) {
      const res = await put(kms, key, settings);
      expect([JSON.stringify(settings), res.status, res.headers['content-type'], res.body.field]).toEqual([
        JSON.stringify(settings),
        400,
        'application/problem+json; charset=utf-8',
        field,
      ]);
    }
    // min_encryption_version between 1 and min_decryption_version is refused.
    await kms.api('post', `/elastickey/${id}/materialkey`);
    await kms.api('post', `/elastickey/${id}/materialkey`);
    const pair = await put(kms, id, { min_decryption_version: 3, min_encryption_version: 2 });
    expect([pair.status, pair.body.field]).toEqual([400, 'min_encryption_version']);

    const set = await put(kms, id, { rotation_period: 'P1Y2M3DT4H', max_encryptions: 2 ** 32 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ rotation_period: 'P1Y2M3DT4H', max_encryptions: 2 ** 32 });
    // Omitted settings stay; null resets them.
    const kept = await kms.api('put', `/elastickey/${id}`).send({ name: `renamed-${id}`, description: '' });
    expect(kept.body).toMatchObject({ name: `renamed-${id}`, rotation_period: 'P1Y2M3DT4H', max_encryptions: 2 ** 32 });
    const reset = await put(kms, id, { rotation_period: null, max_encryptions: null });
    expect(reset.body).toMatchObject({ rotation_period: null, max_encryptions: 2 ** 32 });
    const lower = await put(kms, id, { max_encryptions: 5 });
    expect(lower.body.max_encryptions).toBe(5);

    const kw = await createKey(kms, 'A256GCM/A256KW');
    expect((await kms.api('get', `/elastickey/${kw}`)).body.max_encryptions).toBeNull();
    const gcmkw = await createKey(kms, 'A256CBC-HS512/A256GCMKW');
    expect((await kms.api('get', `/elastickey/${gcmkw}`)).body.max_encryptions).toBe(2 ** 32);
    const unversioned = await kms
      .api('post', '/elastickey')
      .send({ name: uniquePrefix('single'), description: '', algorithm: 'HS256', versioning_allowed: false });
    const rotationless = await put(kms, String(unversioned.body.elastic_key_id), { rotation_period: 'P30D' });
    expect([rotationless.status, rotationless.body.field]).toEqual([400, 'rotation_period']);
  });

  it('numbers the versions of existing rows in creation order when migrating', async () => {
    const database = await db.open();
    const schema = `tenant_${uniquePrefix('m')
      .replace(/[^a-z0-9]/gi, '_')
      .toLowerCase()}`.slice(0, 60);
    const view = await database.schema(schema);
    await migrate(view, KMS_TENANT_MIGRATIONS.slice(0, 1), { schema });
    const now = new Date().toISOString();
    for (const key of ['k1', 'k2']) {
      await view.run(sql`INSERT INTO ${sql.raw(`"${schema}".kms_elastic_keys`)} (id, name, description, provider,
        algorithm, versioning_allowed, import_allowed, status, created_at, updated_at)
        VALUES (${key}, ${key}, ${''}, ${'Internal'}, ${'HS256'}, ${1}, ${0}, ${'active'}, ${now}, ${now})`);
    }
    for (const [id, key] of [
      ['0003', 'k1'],
      ['0001', 'k1'],
      ['0002', 'k2'],
      ['0004', 'k1'],
    ]) {
      await view.run(
        sql`INSERT INTO ${sql.raw(`"${schema}".kms_material_keys`)} (id, elastic_key_id, jwe) VALUES (${id}, ${key}, ${'x'})`,
      );
    }
    await migrate(view, KMS_TENANT_MIGRATIONS, { schema });
    const rows = await view.all<{ id: string; version: number | string }>(
      sql`SELECT id, version FROM ${sql.raw(`"${schema}".kms_material_keys`)} ORDER BY id`,
    );
    expect(rows.map((row) => [row.id, Number(row.version)])).toEqual([
      ['0001', 1],
      ['0002', 1],
      ['0003', 2],
      ['0004', 3],
    ]);
    // The version is unique per elastic key. (The driver's error may come from another realm than the
    // test's, so it is checked by its code, not with toThrow.)
    const duplicate = await view
      .run(
        sql`INSERT INTO ${sql.raw(`"${schema}".kms_material_keys`)} (id, elastic_key_id, jwe, version) VALUES (${'0005'}, ${'k1'}, ${'x'}, ${3})`,
      )
      .then(
        () => 'inserted',
        (error: unknown) => (isUniqueViolation(error) ? 'unique_violation' : String(error)),
      );
    expect(duplicate).toBe('unique_violation');
    await database.dropSchema(schema);
  });
});
