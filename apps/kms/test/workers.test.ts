/**
 * `workers: 2` (node:cluster): two processes serve one KMS's listeners on one database; keys made through
 * one are usable through the other; SIGTERM stops all; a worker that dies takes the service down whole.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { request } from 'undici';
import { uuidv7 } from '@cryptoutil/infra';
import { testPostgresUrl, uniquePrefix } from '@cryptoutil/infra/testing';
import {
  SECRETS,
  client,
  dir,
  setUpProcesses,
  startProcess,
  stop,
  tearDownProcesses,
  writeConfig,
  type Kms,
} from './process-harness.js';

beforeAll(setUpProcesses);
afterAll(tearDownProcesses);

async function untilLogged(kms: Kms, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(kms.output());
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`not logged: ${pattern}\n${kms.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A request on a connection of its own, so the cluster hands it to the next worker. */
async function fresh(kms: Kms, method: 'GET' | 'POST', path: string, body?: string, type = 'text/plain') {
  const res = await request(`${kms.publicUrl}/service/api/v1${path}`, {
    method,
    dispatcher: client,
    reset: true,
    headers: body === undefined ? {} : { 'content-type': type },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function startWorkers(database: string, schema?: string): Promise<{ kms: Kms; pids: number[] }> {
  const config = await writeConfig(uniquePrefix('workers'), database, SECRETS, schema, ['workers: 2']);
  const kms = await startProcess(config);
  const started = await untilLogged(kms, /"kms workers started".*"pids":\[(\d+),(\d+)\]/);
  return { kms, pids: [Number(started[1]), Number(started[2])] };
}

async function servesAsOne(kms: Kms): Promise<void> {
  const created = await fresh(
    kms,
    'POST',
    '/elastickey',
    JSON.stringify({ name: uniquePrefix('k'), description: '', algorithm: 'A256GCM/dir' }),
    'application/json',
  );
  expect(created.status).toBe(201);
  const id = (JSON.parse(created.text) as { elastic_key_id: string }).elastic_key_id;
  // Each request on its own connection: the workers take turns, so each one decrypts the other's output.
  const jwes = [];
  for (let n = 0; n < 6; n++) {
    const encrypted = await fresh(kms, 'POST', `/elastickey/${id}/encrypt`, `secret ${n}`);
    expect(encrypted.status).toBe(200);
    jwes.push(encrypted.text);
  }
  for (const [n, jwe] of jwes.entries()) {
    expect(await fresh(kms, 'POST', `/elastickey/${id}/decrypt`, jwe)).toEqual({ status: 200, text: `secret ${n}` });
  }
  // Both workers answered: each logs the requests it refused with its number.
  for (let n = 0; n < 4; n++) {
    expect((await fresh(kms, 'GET', '/elastickey/0190e0d2-0000-7000-8000-000000000000')).status).toBe(404);
  }
  const refusedBy = new Set(
    kms
      .output()
      .split('\n')
      .filter((line) => line.includes('"request refused"'))
      .map((line) => (JSON.parse(line) as { worker?: number }).worker),
  );
  expect([...refusedBy].sort()).toEqual([1, 2]);
}

describe('KMS workers', () => {
  it('serve one KMS on a SQLite file; SIGTERM stops every process', async () => {
    const { kms, pids } = await startWorkers(`sqlite:${join(dir, `${uniquePrefix('workers')}.sqlite`)}`);
    await servesAsOne(kms);
    await stop(kms);
    expect(kms.child.exitCode).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  });

  (process.env.TEST_DATABASE_URL ? it : it.skip)(
    'serve one KMS on PostgreSQL, and a dead worker takes the service down whole',
    async () => {
      const { kms, pids } = await startWorkers((await testPostgresUrl())!, `test_${uuidv7().replace(/-/g, '_')}`);
      await servesAsOne(kms);
      const exited = new Promise<number | null>((resolve) => kms.child.once('exit', (code) => resolve(code)));
      process.kill(pids[0] as number, 'SIGKILL');
      expect(await exited).not.toBe(0);
      await untilLogged(kms, /"kms worker exited; stopping the others"/);
      expect(pids.filter(alive)).toEqual([]);
    },
  );

  it('refuses workers above 1 on an in-memory database, which processes cannot share', async () => {
    const config = await writeConfig('memory', '"sqlite::memory:"', SECRETS, undefined, ['workers: 2']);
    await expect(startProcess(config)).rejects.toThrow(/workers: 2 needs a database the processes share/);
  });
});
