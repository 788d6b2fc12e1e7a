/**
 * Automatic rotation (kms.md "Automatic rotation"): max_encryptions counted durably in blocks across two
 * KMS instances on one database (one SQLite file, one PostgreSQL schema) and across a restart, and the
 * scheduler rotating keys whose rotation_period is over, with a moved clock and no request.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openDatabase, type Database } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { RotationScheduler, rotateDueElasticKeys } from '../src/domain/key-rotation.js';
import { startTestKms, type TestKms } from './harness.js';
import { inBatches, keepAliveClient, type Answer, type KeepAliveClient } from './keep-alive-client.js';

const MAX = 1000;

async function createKey(kms: TestKms, algorithm: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await kms
    .api('post', '/elastickey')
    .send({ name: uniquePrefix('rotation'), description: '', algorithm, ...extra });
  expect(res.status).toBe(201);
  return String(res.body.elastic_key_id);
}

const put = (kms: TestKms, id: string, settings: Record<string, unknown>) =>
  kms.api('put', `/elastickey/${id}`).send({ name: `key-${id}`, description: '', ...settings });

interface Version {
  material_key_id: string;
  version: number;
  encryption_count: number;
  generate_date: string;
}

async function versions(kms: TestKms, id: string): Promise<Version[]> {
  return (await kms.api('get', `/elastickey/${id}/materialkeys?size=1000&sort=version:ASC`)).body.items as Version[];
}

const kidOf = (compact: string) =>
  String((JSON.parse(Buffer.from(compact.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid);

function countByKid(answers: Answer[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const answer of answers) counts.set(kidOf(answer.text), (counts.get(kidOf(answer.text)) ?? 0) + 1);
  return counts;
}

const encryptMany = (client: KeepAliveClient, id: string, count: number, label: string) =>
  inBatches(
    Array.from({ length: count }, (_, n) => `${label} ${n}`),
    8,
    (text) => client.post(`/elastickey/${id}/encrypt`, text),
  );

describeEachDatabase('automatic rotation', (db) => {
  const opened: Database[] = [];
  let sqliteDir: string | undefined;
  let first: TestKms;
  let second: TestKms;
  let clients: KeepAliveClient[] = [];

  /** Two instances on one database: one SQLite file, or one PostgreSQL schema. */
  const openShared = async (): Promise<Database> => {
    if (db.dialect === 'postgres') return db.open();
    sqliteDir ??= mkdtempSync(join(tmpdir(), 'kms-rotation-'));
    const database = await openDatabase({ url: `sqlite:${join(sqliteDir, 'kms.sqlite')}` });
    opened.push(database);
    return database;
  };

  beforeAll(async () => {
    const database = await openShared();
    await migrate(database, KMS_MIGRATIONS);
    first = await startTestKms(database);
    second = await startTestKms(await openShared());
    clients = [await keepAliveClient(first, 4), await keepAliveClient(second, 4)];
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(opened.map((database) => database.close()));
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  });

  it('never serves more than max_encryptions with one version across two instances; the rest use new versions', async () => {
    const id = await createKey(first, 'A256GCM/dir');
    expect((await put(first, id, { max_encryptions: MAX })).body.max_encryptions).toBe(MAX);
    const [viaFirst, viaSecond] = await Promise.all([
      encryptMany(clients[0] as KeepAliveClient, id, 1500, 'first'),
      encryptMany(clients[1] as KeepAliveClient, id, 1500, 'second'),
    ]);
    const all = [...viaFirst, ...viaSecond];
    expect(all.filter((answer) => answer.status !== 200)).toEqual([]);
    const counts = countByKid(all);
    const stored = await versions(first, id);
    const versionOf = new Map(stored.map((version) => [version.material_key_id, version.version]));
    // Every kid is a version of this key, none served more than MAX, and 3,000 needed at least three.
    expect([...counts.keys()].every((kid) => versionOf.has(kid))).toBe(true);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(MAX);
    expect(counts.size).toBeGreaterThanOrEqual(3);
    // The durable counts (reserved blocks) are within the bound too, and cover what was served.
    for (const version of stored) {
      expect(version.encryption_count).toBeLessThanOrEqual(MAX);
      expect(version.encryption_count).toBeGreaterThanOrEqual(counts.get(version.material_key_id) ?? 0);
    }
    // And every one decrypts, on either instance.
    const decrypted = await inBatches(all, 8, (answer) =>
      (clients[1] as KeepAliveClient).post(`/elastickey/${id}/decrypt`, answer.text),
    );
    expect(decrypted.filter((answer) => answer.status !== 200)).toEqual([]);
  }, 600_000);

  it('counts every item of a batch encrypt and every rewrap against max_encryptions', async () => {
    const id = await createKey(first, 'A256GCM/dir');
    await put(first, id, { max_encryptions: 100 });
    const items = Array.from({ length: 250 }, (_, n) => ({ data: Buffer.from(`item ${n}`).toString('base64url') }));
    const batch = await first.api('post', `/elastickey/${id}/encrypt/batch`).send({ items });
    expect(batch.status).toBe(200);
    const jwes = (batch.body.results as { jwe: string }[]).map((result) => result.jwe);
    const counts = new Map<string, number>();
    for (const jwe of jwes) counts.set(kidOf(jwe), (counts.get(kidOf(jwe)) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(100);
    expect(counts.size).toBeGreaterThanOrEqual(3);
    const rewrapped = await second
      .api('post', `/elastickey/${id}/rewrap/batch`)
      .send({ items: jwes.slice(0, 150).map((jwe) => ({ jwe })) });
    expect(rewrapped.status).toBe(200);
    for (const version of await versions(first, id)) expect(version.encryption_count).toBeLessThanOrEqual(100);
    const afterRewrap = new Map<string, number>();
    for (const { jwe } of rewrapped.body.results as { jwe: string }[]) {
      afterRewrap.set(kidOf(jwe), (afterRewrap.get(kidOf(jwe)) ?? 0) + 1);
    }
    expect(Math.max(...afterRewrap.values())).toBeLessThanOrEqual(100);
  });

  it('keeps the count across a restart: unused counts of a block are lost, never handed out again', async () => {
    const id = await createKey(first, 'A128GCM/dir');
    await put(first, id, { max_encryptions: MAX });
    const before = await encryptMany(clients[0] as KeepAliveClient, id, 600, 'before');
    expect(before.filter((answer) => answer.status !== 200)).toEqual([]);
    const [v1] = await versions(first, id);
    const reserved = v1?.encryption_count ?? 0;
    expect(countByKid(before).get(v1?.material_key_id ?? '')).toBe(600);
    expect(reserved).toBeGreaterThanOrEqual(600);

    // A restart: a new process on the same database, with nothing in memory.
    const restarted = await startTestKms(await openShared());
    const client = await keepAliveClient(restarted, 4);
    try {
      const after = await encryptMany(client, id, 600, 'after');
      expect(after.filter((answer) => answer.status !== 200)).toEqual([]);
      const servedAfter = countByKid(after).get(v1?.material_key_id ?? '') ?? 0;
      expect(servedAfter).toBeLessThanOrEqual(MAX - reserved);
      expect(600 + servedAfter).toBeLessThanOrEqual(MAX);
      const stored = await versions(restarted, id);
      expect(stored[0]?.encryption_count).toBeGreaterThanOrEqual(reserved);
      expect(stored[0]?.encryption_count).toBeLessThanOrEqual(MAX);
      expect(stored.length).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
    }
  }, 600_000);

  it('refuses an exhausted version that cannot rotate, or that the caller asked for, with 409', async () => {
    const single = await createKey(first, 'A128GCM/dir', { versioning_allowed: false });
    await put(first, single, { max_encryptions: 20 });
    const answers = await encryptMany(clients[0] as KeepAliveClient, single, 21, 'single');
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(20);
    expect(answers.filter((answer) => answer.status === 409).map((answer) => answer.code)).toEqual([
      'material_key_exhausted',
    ]);

    const id = await createKey(first, 'A128GCM/A128GCMKW');
    await put(first, id, { max_encryptions: 10 });
    const pinned = await inBatches(Array.from({ length: 11 }), 1, () =>
      (clients[0] as KeepAliveClient).post(`/elastickey/${id}/encrypt?version=1`, 'pinned'),
    );
    expect(pinned.map((answer) => answer.status)).toEqual([...Array(10).fill(200), 409]);
    expect(pinned[10]?.code).toBe('material_key_exhausted');
    // Without a version, the next encrypt moves on to a fresh version.
    const next = await (clients[0] as KeepAliveClient).post(`/elastickey/${id}/encrypt`, 'next');
    expect(next.status).toBe(200);
    expect((await versions(first, id)).map((version) => version.version)).toEqual([1, 2]);
  });

  it('rotates a key whose rotation_period is over from the scheduler, with a moved clock and no request', async () => {
    const id = await createKey(first, 'ES256');
    expect((await put(first, id, { rotation_period: 'PT1H' })).body.rotation_period).toBe('PT1H');
    const created = new Date((await versions(first, id))[0]?.generate_date ?? '');
    const scheduler = new RotationScheduler(first.service, { intervalMs: 5 });
    scheduler.start();
    try {
      const mine = (rotations: { elasticKeyId: string; version: number }[]) =>
        rotations.filter((rotation) => rotation.elasticKeyId === id).map((rotation) => rotation.version);
      first.clock.now = new Date(created.getTime() + 59 * 60_000);
      expect(mine(await scheduler.nextSweep())).toEqual([]);
      first.clock.now = new Date(created.getTime() + 61 * 60_000);
      expect(mine(await scheduler.nextSweep())).toEqual([2]);
      // The new version starts a new period.
      expect(mine(await scheduler.nextSweep())).toEqual([]);
      first.clock.now = new Date(created.getTime() + 122 * 60_000);
      expect(mine(await scheduler.nextSweep())).toEqual([3]);
    } finally {
      await scheduler.stop();
    }
    const stored = await versions(first, id);
    expect(stored.map((version) => version.version)).toEqual([1, 2, 3]);
    const signed = await first.api('post', `/elastickey/${id}/sign`).type('text/plain').send('doc');
    expect(kidOf(signed.text)).toBe(stored[2]?.material_key_id);
  });

  it('lets one of two instances rotate a key for one period; the other finds it rotated', async () => {
    const id = await createKey(first, 'A256GCM/dir');
    await put(first, id, { rotation_period: 'P1D' });
    const created = new Date((await versions(first, id))[0]?.generate_date ?? '');
    for (const kms of [first, second]) kms.clock.now = new Date(created.getTime() + 25 * 3600_000);
    const [a, b] = await Promise.all([rotateDueElasticKeys(first.ctx), rotateDueElasticKeys(second.ctx)]);
    const mine = [...a, ...b].filter((rotation) => rotation.elasticKeyId === id);
    expect(mine.map((rotation) => rotation.version)).toEqual([2]);
    expect((await versions(second, id)).map((version) => version.version)).toEqual([1, 2]);
  });

  it('reports a key that cannot be rotated and still rotates the others', async () => {
    const broken = await createKey(first, 'HS256');
    const fine = await createKey(first, 'HS256');
    for (const id of [broken, fine]) await put(first, id, { rotation_period: 'PT2H' });
    // A period no PUT would accept, as if written by hand.
    await first.ctx.db.run(
      sql`UPDATE ${first.ctx.tables.elasticKeys} SET rotation_period = ${'every tuesday'} WHERE id = ${broken}`,
    );
    const created = new Date((await versions(first, fine))[0]?.generate_date ?? '');
    first.clock.now = new Date(created.getTime() + 3 * 3600_000);
    const failures: string[] = [];
    const rotated = await rotateDueElasticKeys(first.ctx, (id) => failures.push(id));
    expect(failures).toEqual([broken]);
    expect(rotated.filter((rotation) => [broken, fine].includes(rotation.elasticKeyId))).toEqual([
      expect.objectContaining({ elasticKeyId: fine, version: 2 }),
    ]);
  });
});
