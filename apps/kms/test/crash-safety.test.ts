/**
 * Crash safety (issue #10): the KMS is killed with SIGKILL while it creates elastic keys, rotates material
 * keys and rotates barrier tiers, at a random moment, again and again. After each restart every key that
 * is listed is usable, nothing half-created shows up, and every ciphertext and signature the KMS answered
 * with before the crash still decrypts or verifies. `CRASH_ITERATIONS` sets the rounds (CI: 3;
 * `pnpm test:soak`: 25).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { request } from 'undici';
import { uuidv7 } from '@cryptoutil/infra';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import {
  SECRETS,
  call,
  client,
  crash,
  dir,
  setUpProcesses,
  startProcess,
  stop,
  tearDownProcesses,
  writeConfig,
  type Kms,
} from './process-harness.js';

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 3);
const TIERS = ['root', 'intermediate', 'content'] as const;

beforeAll(setUpProcesses);
afterAll(tearDownProcesses);

interface Key {
  id: string;
  algorithm: string;
  status: string;
}

/** What the KMS answered 2xx with: each must still decrypt or verify after any crash. */
interface Output {
  keyId: string;
  kind: 'jwe' | 'jws';
  text: string;
  plaintext: string;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function keys(kms: Kms): Promise<Key[]> {
  const listed = await call(kms, 'GET', '/elastickeys?size=1000');
  expect(listed.status).toBe(200);
  return (
    JSON.parse(listed.text) as { items: { elastic_key_id: string; algorithm: string; status: string }[] }
  ).items.map((item) => ({ id: item.elastic_key_id, algorithm: item.algorithm, status: item.status }));
}

async function produce(kms: Kms, key: Key, outputs: Output[]): Promise<void> {
  const plaintext = `payload ${uuidv7()}`;
  const signing = key.algorithm === 'ES256';
  const res = await call(kms, 'POST', `/elastickey/${key.id}/${signing ? 'sign' : 'encrypt'}`, plaintext, 'text/plain');
  if (res.status === 200) outputs.push({ keyId: key.id, kind: signing ? 'jws' : 'jwe', text: res.text, plaintext });
}

/** Every output decrypts or verifies; every listed key is active and works; returns the problems. */
async function check(kms: Kms, outputs: Output[]): Promise<string[]> {
  const problems: string[] = [];
  for (const output of outputs) {
    if (output.kind === 'jwe') {
      const res = await call(kms, 'POST', `/elastickey/${output.keyId}/decrypt`, output.text, 'application/jose');
      if (res.status !== 200 || res.text !== output.plaintext) problems.push(`decrypt ${output.keyId}: ${res.status}`);
    } else {
      const res = await call(kms, 'POST', `/elastickey/${output.keyId}/verify`, output.text, 'application/jose');
      if (res.status !== 200 || !res.text.includes('"valid":true'))
        problems.push(`verify ${output.keyId}: ${res.text}`);
    }
  }
  for (const key of await keys(kms)) {
    if (key.status !== 'active') problems.push(`key ${key.id} is ${key.status}`);
    const probe: Output[] = [];
    await produce(kms, key, probe);
    if (probe.length !== 1) problems.push(`key ${key.id} (${key.algorithm}) is not usable`);
  }
  return problems;
}

function crashSuite(name: string, database: () => Promise<{ url: string; schema?: string } | undefined>) {
  describe(name, () => {
    it(
      `survives ${ITERATIONS} SIGKILLs in the middle of key creation, rotation and barrier rotation`,
      async () => {
        const db = await database();
        if (!db) return;
        const config = await writeConfig(`crash-${uuidv7()}`, db.url, SECRETS, db.schema);
        let kms = await startProcess(config);
        const outputs: Output[] = [];
        let cutOff = 0; // requests the kill interrupted
        try {
          for (const algorithm of ['A256GCM/dir', 'A256GCM/A256KW', 'ES256']) {
            const created = await call(
              kms,
              'POST',
              '/elastickey',
              JSON.stringify({ name: `seed-${uuidv7()}`, description: '', algorithm }),
            );
            expect(created.status).toBe(201);
          }
          for (const key of await keys(kms)) await produce(kms, key, outputs);

          for (let round = 0; round < ITERATIONS; round++) {
            const known = await keys(kms);
            const running = kms;
            const chaos: Promise<unknown>[] = [];
            for (let n = 0; n < 12; n++) {
              const key = pick(known);
              const action = n % 4;
              chaos.push(
                action === 0
                  ? call(running, 'POST', `/elastickey/${key.id}/materialkey`)
                  : action === 1
                    ? call(
                        running,
                        'POST',
                        '/elastickey',
                        JSON.stringify({
                          name: `crash-${uuidv7()}`,
                          description: '',
                          algorithm: pick(['A256GCM/dir', 'ES256']),
                        }),
                      )
                    : action === 2
                      ? request(`${running.adminUrl}/admin/v1/barrier/${pick(TIERS)}/rotate`, {
                          method: 'POST',
                          dispatcher: client,
                        }).then((res) => res.body.dump())
                      : produce(running, key, outputs),
              );
            }
            await new Promise((done) => setTimeout(done, Math.random() * 60));
            await crash(running);
            const settled = await Promise.allSettled(chaos);
            cutOff += settled.filter((result) => result.status === 'rejected').length;

            kms = await startProcess(config);
            expect([round, await check(kms, outputs)]).toEqual([round, []]);
          }
          expect(outputs.length).toBeGreaterThanOrEqual(3);
          expect(cutOff).toBeGreaterThan(0);
        } finally {
          await stop(kms);
        }
      },
      120_000 + ITERATIONS * 30_000,
    );
  });
}

crashSuite('KMS crash safety on SQLite', async () => ({ url: `sqlite:${join(dir, `crash-${uuidv7()}.sqlite`)}` }));
crashSuite('KMS crash safety on PostgreSQL', async () => {
  const url = await testPostgresUrl();
  if (!url) {
    console.warn('PostgreSQL crash-safety test skipped: no TEST_DATABASE_URL and no Docker');
    return undefined;
  }
  return { url, schema: `crash_${uuidv7().replace(/-/g, '_')}` };
});
