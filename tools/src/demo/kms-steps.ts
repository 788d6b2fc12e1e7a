/**
 * `demo kms`: a realm user of the demo seed (HTTP Basic) lists the seeded keys and checks each against the
 * seed file, then creates a key, encrypts, decrypts, signs, verifies, rotates, decrypts the old ciphertext
 * and generates a data key.
 */
import { readFile } from 'node:fs/promises';
import type { Agent } from 'undici';
import { parse } from 'yaml';
import { call, demoBasic } from './http.js';
import { KMS_DEMO_SEED } from './services.js';
import { check, type Step } from './steps.js';

interface Seed {
  users: { username: string; tenants: string[] }[];
  elastic_keys: { tenant: string; name: string; algorithm: string; versions?: number }[];
}

interface Key {
  elastic_key_id: string;
  name: string;
  algorithm: string;
  status: string;
  material_key_count: number;
}

const USER = 'demo-tenant-admin';
const kidOf = (compact: string) =>
  (JSON.parse(Buffer.from(compact.split('.')[0] ?? '', 'base64url').toString()) as { kid?: string }).kid;

export function kmsSteps(dispatcher: Agent, kmsUrl: string): Step[] {
  const api = `${kmsUrl}/service/api/v1`;
  const headers = demoBasic(USER);
  const state: { key?: string; jwe?: string; jws?: string; signingKey?: string } = {};
  const plaintext = `demo plaintext ${new Date().toISOString()}`;
  const step = (name: string, run: Step['run']): Step => ({ phase: 'kms', name, run });
  const expectStatus = (status: number, expected: number, what: string, text: string) =>
    check(status === expected, `${what} answered ${status} (expected ${expected}): ${text.slice(0, 200)}`);

  return [
    step(`list the seeded keys as ${USER}`, async () => {
      const seed = parse(await readFile(KMS_DEMO_SEED, 'utf8')) as Seed;
      const tenant = seed.users.find((user) => user.username === USER)?.tenants[0];
      const expected = seed.elastic_keys.filter((key) => key.tenant === tenant);
      const res = await call(dispatcher, 'GET', `${api}/elastickeys?size=1000`, { headers });
      expectStatus(res.status, 200, 'GET /elastickeys', res.text);
      const keys = res.json<{ items: Key[] }>().items;
      for (const seeded of expected) {
        const key = keys.find((item) => item.name === seeded.name);
        check(key, `seeded key ${seeded.name} is missing`);
        check(
          key.algorithm === seeded.algorithm,
          `${seeded.name} has algorithm ${key.algorithm}, not ${seeded.algorithm}`,
        );
        check(key.status === 'active', `${seeded.name} is ${key.status}`);
        check(
          key.material_key_count >= (seeded.versions ?? 1),
          `${seeded.name} has ${key.material_key_count} versions`,
        );
      }
      state.signingKey = keys.find((key) => key.algorithm === 'ES256')?.elastic_key_id;
      return `${expected.length} seeded keys of ${tenant} present, active, with their versions`;
    }),
    step('create a key (A256GCM/dir)', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey`, {
        headers,
        type: 'application/json',
        body: JSON.stringify({
          name: `demo-cli-${Date.now()}`,
          description: 'made by the demo CLI',
          algorithm: 'A256GCM/dir',
        }),
      });
      expectStatus(res.status, 201, 'POST /elastickey', res.text);
      state.key = res.json<Key>().elastic_key_id;
      return state.key;
    }),
    step('encrypt', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/encrypt`, {
        headers,
        type: 'text/plain',
        body: plaintext,
      });
      expectStatus(res.status, 200, 'encrypt', res.text);
      check(res.text.split('.').length === 5, 'encrypt did not return a compact JWE');
      state.jwe = res.text;
      return `JWE, kid ${kidOf(res.text)}`;
    }),
    step('decrypt', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/decrypt`, {
        headers,
        type: 'text/plain',
        body: state.jwe ?? '',
      });
      expectStatus(res.status, 200, 'decrypt', res.text);
      check(res.text === plaintext, 'decrypt did not return the plaintext');
      return 'plaintext back';
    }),
    step('sign (ES256)', async () => {
      check(state.signingKey, 'no ES256 key among the seeded keys');
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.signingKey}/sign`, {
        headers,
        type: 'text/plain',
        body: plaintext,
      });
      expectStatus(res.status, 200, 'sign', res.text);
      check(res.text.split('.').length === 3, 'sign did not return a compact JWS');
      state.jws = res.text;
      return `JWS, kid ${kidOf(res.text)}`;
    }),
    step('verify', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.signingKey}/verify`, {
        headers,
        type: 'text/plain',
        body: state.jws ?? '',
      });
      expectStatus(res.status, 200, 'verify', res.text);
      const result = res.json<{ valid: boolean; payload: string }>();
      check(result.valid && Buffer.from(result.payload, 'base64url').toString() === plaintext, 'verify disagrees');
      return 'signature valid, payload intact';
    }),
    step('rotate', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/materialkey`, { headers });
      expectStatus(res.status, 201, 'POST materialkey', res.text);
      const kid = res.json<{ material_key_id: string }>().material_key_id;
      check(kid !== kidOf(state.jwe ?? ''), 'rotation returned the old version');
      return `new version ${kid}`;
    }),
    step('decrypt the old ciphertext', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/decrypt`, {
        headers,
        type: 'text/plain',
        body: state.jwe ?? '',
      });
      expectStatus(res.status, 200, 'decrypt', res.text);
      check(res.text === plaintext, 'the old ciphertext no longer decrypts');
      return 'still decrypts after rotation';
    }),
    step('generate a data key (AES-256)', async () => {
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/generate?alg=AES-256`, { headers });
      expectStatus(res.status, 200, 'generate', res.text);
      check(res.text.split('.').length === 5, 'generate did not return the data key as a JWE');
      const back = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/decrypt`, {
        headers,
        type: 'text/plain',
        body: res.text,
      });
      check(back.status === 200, `the wrapped data key does not decrypt (${back.status})`);
      return 'a wrapped AES-256 key that decrypts';
    }),
  ];
}
