/**
 * Dependencies down (issue #10): PostgreSQL goes away under load (a TCP proxy in front of it drops every
 * connection and refuses new ones) and comes back. Meanwhile requests fail fast with a 503 problem and
 * Retry-After, readiness reports the database, and afterwards the same process serves again without a
 * restart, with everything answered 2xx before the outage still there.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'undici';
import { uuidv7 } from '@cryptoutil/infra';
import { TcpOutage, testPostgresUrl } from '@cryptoutil/infra/testing';
import {
  SECRETS,
  call,
  client,
  setUpProcesses,
  startProcess,
  stop,
  tearDownProcesses,
  writeConfig,
  type Kms,
} from './process-harness.js';

beforeAll(setUpProcesses);
afterAll(tearDownProcesses);

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip;
postgres('the KMS while PostgreSQL is down', () => {
  let kms: Kms;
  let outage: TcpOutage;
  afterAll(async () => {
    if (kms) await stop(kms);
    await outage?.down().catch(() => undefined);
  });

  it('answers 503 fast, reports not ready, and recovers without a restart, losing nothing', async () => {
    const url = new URL((await testPostgresUrl())!);
    outage = new TcpOutage({ host: url.hostname, port: Number(url.port || 5432) });
    await outage.up();
    const proxied = new URL(url);
    proxied.port = String(outage.port);
    proxied.hostname = '127.0.0.1';
    const schema = `outage_${uuidv7().replace(/-/g, '_')}`;
    kms = await startProcess(
      await writeConfig('outage', proxied.toString(), SECRETS, schema, [], ['  connect_timeout_seconds: 2']),
    );
    const created = await call(
      kms,
      'POST',
      '/elastickey',
      JSON.stringify({ name: 'kept', description: '', algorithm: 'A256GCM/dir' }),
    );
    expect(created.status).toBe(201);
    const keyId = (JSON.parse(created.text) as { elastic_key_id: string }).elastic_key_id;
    const before = await call(kms, 'POST', `/elastickey/${keyId}/encrypt`, 'before the outage', 'text/plain');
    expect(before.status).toBe(200);
    const ready = async () => (await request(`${kms.adminUrl}/admin/v1/readyz`, { dispatcher: client })).statusCode;
    expect(await ready()).toBe(200);

    await outage.down();
    for (const path of ['/elastickeys', `/elastickey/${keyId}`]) {
      const started = Date.now();
      const res = await request(`${kms.publicUrl}/service/api/v1${path}`, { dispatcher: client });
      const body = (await res.body.json()) as { code: string };
      expect([path, res.statusCode, res.headers['retry-after'], body.code]).toEqual([
        path,
        503,
        '1',
        expect.stringMatching(/^(database|audit)_unavailable$/),
      ]);
      expect(Date.now() - started).toBeLessThan(3000);
    }
    // A crypto call may be served from the key cache, but not without its audit record: 503 too.
    expect((await call(kms, 'POST', `/elastickey/${keyId}/encrypt`, 'during', 'text/plain')).status).toBe(503);
    expect(await ready()).toBe(503);

    await outage.up();
    const deadline = Date.now() + 15_000;
    while ((await ready()) !== 200 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 200));
    expect(await ready()).toBe(200);
    const after = await call(kms, 'POST', `/elastickey/${keyId}/decrypt`, before.text, 'application/jose');
    expect([after.status, after.text]).toEqual([200, 'before the outage']);
    const listed = JSON.parse((await call(kms, 'GET', '/elastickeys')).text) as { items: { name: string }[] };
    expect(listed.items.map((item) => item.name)).toContain('kept');
    expect(kms.child.exitCode).toBeNull();
  }, 60_000);
});
