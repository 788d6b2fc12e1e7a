/**
 * The KMS as real processes (`node apps/kms/dist/main.js`, built by `pnpm test`): restarts with the
 * same or other unseal secrets, and two processes sharing one PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { isCanonicalUuid, uuidv7 } from '@cryptoutil/infra';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { demoCredentialTable, loadDemoSeed } from '../src/domain/demo-seed.js';
import {
  SECRETS,
  call,
  ca,
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

describe('KMS processes on SQLite', () => {
  it('keeps keys usable across a restart with the same secrets and refuses other secrets without touching data', async () => {
    const database = `sqlite:${join(dir, 'restart.sqlite')}`;
    const first = await startProcess(await writeConfig('a', database, SECRETS));
    const created = await call(
      first,
      'POST',
      '/elastickey',
      JSON.stringify({ name: 'k', description: '', algorithm: 'A256GCM/A256KW' }),
    );
    expect(created.status).toBe(201);
    const id = (JSON.parse(created.text) as { elastic_key_id: string }).elastic_key_id;
    const jwe = (await call(first, 'POST', `/elastickey/${id}/encrypt`, 'survives restarts', 'text/plain')).text;
    const ready = await request(`${first.adminUrl}/admin/v1/readyz`, { dispatcher: client });
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();
    await stop(first);

    const threeOfFive = await startProcess(await writeConfig('b', database, [SECRETS[3]!, SECRETS[1]!, SECRETS[4]!]));
    expect((await call(threeOfFive, 'POST', `/elastickey/${id}/decrypt`, jwe, 'text/plain')).text).toBe(
      'survives restarts',
    );
    await stop(threeOfFive);

    const others = SECRETS.map((secret) => secret.replace('process', 'another'));
    await expect(startProcess(await writeConfig('c', database, others))).rejects.toThrow(
      /cannot start: the unseal secrets do not open the key hierarchy/,
    );
    await expect(startProcess(await writeConfig('d', database, SECRETS.slice(0, 2)))).rejects.toThrow(
      /2 unseal secret\(s\) given, 3 needed/,
    );

    const again = await startProcess(await writeConfig('e', database, SECRETS));
    expect((await call(again, 'POST', `/elastickey/${id}/decrypt`, jwe, 'text/plain')).text).toBe('survives restarts');
    const list = JSON.parse((await call(again, 'GET', '/elastickeys')).text) as { total: number };
    expect(list.total).toBe(1);
    await stop(again);
    for (const kms of [first, threeOfFive, again]) {
      expect(kms.output()).not.toMatch(/"(d|k)"\s*:\s*"|survives restarts|unseal-secret/);
    }
  });
});

describe('KMS --demo', () => {
  const seedFile = resolve(import.meta.dirname ?? '.', '../../../deployments/kms/config/demo-seed.yml');
  const basic = (user: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${user}-password`).toString('base64')}`,
  });
  const demoTenants = async (kms: Kms) => {
    const res = await request(`${kms.adminUrl}/admin/v1/tenants`, { dispatcher: client });
    const body = (await res.body.json()) as { items: { name: string; tenant_id: string }[] };
    return body.items.filter((tenant) => tenant.name.startsWith('demo-')).map((tenant) => tenant.tenant_id);
  };

  it('seeds users and keys from the seed file only, keeps them on restart and makes them anew with --reset-demo', async () => {
    const seed = await loadDemoSeed(seedFile);
    const config = await writeConfig('demo', `sqlite:${join(dir, 'demo.sqlite')}`, SECRETS, undefined, [
      'auth:',
      '  methods: [basic]',
    ]);
    const first = await startProcess(config, ['--demo']);
    expect(first.output()).toMatch(/DEMO DATA/);
    // Realm users without Identity: readiness does not wait for a JWKS that is not configured.
    const ready = await request(`${first.adminUrl}/admin/v1/readyz`, { dispatcher: client });
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();
    const tenants = await demoTenants(first);
    expect(tenants).toHaveLength(seed.tenants.length);
    for (const user of seed.users) {
      const listed = await call(first, 'GET', '/elastickeys?size=100', undefined, undefined, basic(user.username));
      expect(listed.status).toBe(200);
      const names = (JSON.parse(listed.text) as { items: { name: string }[] }).items.map((key) => key.name).sort();
      // The user's first tenant, whose keys are exactly the seed file's for that tenant.
      expect(names).toEqual(
        seed.elastic_keys
          .filter((key) => key.tenant === user.tenants[0])
          .map((key) => key.name)
          .sort(),
      );
    }
    const document = await request(`${first.publicUrl}/.well-known/openapi.json`, { dispatcher: client });
    const { info } = (await document.body.json()) as { info: { description: string } };
    expect(info.description).toContain(demoCredentialTable(seed));
    await stop(first);

    const again = await startProcess(config, ['--demo']);
    expect(await demoTenants(again)).toEqual(tenants);
    await stop(again);

    const reset = await startProcess(config, ['--reset-demo']);
    const fresh = await demoTenants(reset);
    expect(fresh).toHaveLength(tenants.length);
    for (const id of fresh) expect(tenants).not.toContain(id);
    const listed = await call(reset, 'GET', '/elastickeys?size=100', undefined, undefined, basic('demo-user'));
    expect((JSON.parse(listed.text) as { total: number }).total).toBe(
      seed.elastic_keys.filter((key) => key.tenant === 'demo-tenant-a').length,
    );
    await stop(reset);
  });
});

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip;
postgres('two KMS processes on one PostgreSQL', () => {
  let one: Kms;
  let two: Kms;
  beforeAll(async () => {
    const url = (await testPostgresUrl())!;
    const schema = `test_${uuidv7().replace(/-/g, '_')}`;
    one = await startProcess(await writeConfig('pg1', url, SECRETS, schema));
    two = await startProcess(await writeConfig('pg2', url, SECRETS, schema));
  });
  afterAll(async () => {
    await Promise.all([one, two].filter(Boolean).map(stop));
  });

  it('decrypts on one what the other encrypted, and uses a rotation made on the other', async () => {
    const created = await call(
      one,
      'POST',
      '/elastickey',
      JSON.stringify({ name: 'shared', description: '', algorithm: 'ES256' }),
    );
    const id = (JSON.parse(created.text) as { elastic_key_id: string }).elastic_key_id;
    expect(isCanonicalUuid(id)).toBe(true);
    const encKey = await call(
      two,
      'POST',
      '/elastickey',
      JSON.stringify({ name: 'shared-enc', description: '', algorithm: 'A256GCM/dir' }),
    );
    const encId = (JSON.parse(encKey.text) as { elastic_key_id: string }).elastic_key_id;
    const jwe = (await call(one, 'POST', `/elastickey/${encId}/encrypt`, 'across processes', 'text/plain')).text;
    expect((await call(two, 'POST', `/elastickey/${encId}/decrypt`, jwe, 'text/plain')).text).toBe('across processes');

    const rotated = JSON.parse((await call(two, 'POST', `/elastickey/${id}/materialkey`)).text) as {
      material_key_id: string;
    };
    const jws = (await call(one, 'POST', `/elastickey/${id}/sign`, 'after rotation', 'text/plain')).text;
    const header = JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
    expect(header.kid).toBe(rotated.material_key_id);
    expect(JSON.parse((await call(two, 'POST', `/elastickey/${id}/verify`, jws, 'text/plain')).text)).toMatchObject({
      valid: true,
    });

    const tier = await request(`${two.adminUrl}/admin/v1/barrier/root/rotate`, { method: 'POST', dispatcher: client });
    expect(tier.statusCode).toBe(201);
    await tier.body.dump();
    await request(`${two.adminUrl}/admin/v1/barrier/intermediate/rotate`, { method: 'POST', dispatcher: client }).then(
      (r) => r.body.dump(),
    );
    await request(`${two.adminUrl}/admin/v1/barrier/content/rotate`, { method: 'POST', dispatcher: client }).then((r) =>
      r.body.dump(),
    );
    const afterTierRotation = JSON.parse((await call(two, 'POST', `/elastickey/${id}/materialkey`)).text) as {
      material_key_id: string;
    };
    const signedByOne = (await call(one, 'POST', `/elastickey/${id}/sign`, 'new tiers', 'text/plain')).text;
    const kid = (JSON.parse(Buffer.from(signedByOne.split('.')[0] ?? '', 'base64url').toString()) as { kid: string })
      .kid;
    expect(kid).toBe(afterTierRotation.material_key_id);
  });

  it('keeps one valid audit chain with both processes writing at once: every answered request recorded', async () => {
    const audit = async (kms: Kms, path: string) => {
      const res = await request(`${kms.adminUrl}${path}`, { dispatcher: client });
      return (await res.body.json()) as { ok?: boolean; records?: number; items?: { seq: number; event: string }[] };
    };
    const created = await call(
      one,
      'POST',
      '/elastickey',
      JSON.stringify({ name: 'audited', description: '', algorithm: 'A256GCM/dir' }),
    );
    const id = (JSON.parse(created.text) as { elastic_key_id: string }).elastic_key_id;
    const before = (await audit(two, '/admin/v1/audit/verify')).records ?? 0;
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, n) =>
        call(n % 2 ? one : two, 'POST', `/elastickey/${id}/encrypt`, `message ${n}`, 'text/plain'),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(100).fill(200));
    // No flush on purpose: every answered request's record is already stored.
    const newer = (await audit(one, `/admin/v1/audit?event=kms.encrypt&size=1000`)).items ?? [];
    expect(newer.filter((record) => record.seq > before)).toHaveLength(100);
    for (const kms of [one, two]) {
      expect(await audit(kms, '/admin/v1/audit/verify')).toMatchObject({ ok: true, records: before + 100 });
    }
  });

  it('refuses a request to the admin listener without a client certificate', async () => {
    const anonymous = new Agent({ connect: { ca: ca.rootPem } });
    await expect(request(`${one.adminUrl}/admin/v1/livez`, { dispatcher: anonymous })).rejects.toThrow();
    await anonymous.close();
  });
});
