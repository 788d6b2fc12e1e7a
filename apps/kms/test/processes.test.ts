/**
 * The KMS as real processes (`node apps/kms/dist/main.js`, built by `pnpm test`): restarts with the
 * same or other unseal secrets, and two processes sharing one PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { isCanonicalUuid, uuidv7 } from '@cryptoutil/infra';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { loadOrCreateCa, loadOrIssueLeaf, type StoredCa } from '@cryptoutil/tls';
import { demoCredentialTable, loadDemoSeed } from '../src/domain/demo-seed.js';

const MAIN = resolve(import.meta.dirname ?? '.', '../dist/main.js');
const SECRETS = [1, 2, 3, 4, 5].map((n) => `process-test-unseal-secret-${n}-of-5-abcdefghijklmnop`);

interface Kms {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  output: () => string;
}

let dir: string;
let ca: StoredCa;
let client: Agent;

async function writeConfig(
  name: string,
  databaseUrl: string,
  secrets: readonly string[],
  schema?: string,
  extra: readonly string[] = [],
): Promise<string> {
  const secretFiles: string[] = [];
  for (const [index, secret] of secrets.entries()) {
    const file = join(dir, `${name}-unseal-${index}.secret`);
    await writeFile(file, secret, { mode: 0o600 });
    secretFiles.push(`    - file://${file}`);
  }
  const config = [
    'server:',
    '  public_port: 0',
    '  admin_port: 0',
    'database:',
    `  url: ${databaseUrl}`,
    ...(schema ? [`  schema: ${schema}`] : []),
    'tls:',
    `  dir: ${join(dir, 'tls')}`,
    'unseal:',
    '  secrets:',
    ...secretFiles,
    'log:',
    '  level: debug',
    ...extra,
    '',
  ].join('\n');
  const path = join(dir, `${name}-${uuidv7()}.yml`);
  await writeFile(path, config);
  return path;
}

/** Starts main.js; resolves when it logs its URLs, rejects with its stderr when it exits first. */
function startProcess(configPath: string, flags: readonly string[] = []): Promise<Kms> {
  const child = spawn(process.execPath, [MAIN, '--config', configPath, ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  return new Promise((resolvePromise, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const started = stdout
        .split('\n')
        .filter((line) => line.includes('"kms started"'))
        .map((line) => JSON.parse(line) as { public_url: string; admin_url: string })[0];
      if (started) {
        resolvePromise({
          child,
          publicUrl: started.public_url,
          adminUrl: started.admin_url,
          output: () => stdout + stderr,
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`exit ${code}: ${stderr.trim()}`)));
  });
}

async function stop(kms: Kms): Promise<void> {
  if (kms.child.exitCode !== null) return;
  const exited = new Promise((done) => kms.child.once('exit', done));
  kms.child.kill('SIGTERM');
  await exited;
}

async function call(
  kms: Kms,
  method: string,
  path: string,
  body?: string,
  type = 'application/json',
  headers: Record<string, string> = {},
) {
  const res = await request(`${kms.publicUrl}/service/api/v1${path}`, {
    method: method as 'GET',
    dispatcher: client,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': type }) },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run pnpm build (pnpm test does)`);
  dir = await mkdtemp(join(tmpdir(), 'kms-process-'));
  ca = await loadOrCreateCa(join(dir, 'tls'));
  const leaf = await loadOrIssueLeaf(join(dir, 'tls'), 'test-client', ca, {
    commonName: 'test-client',
    usage: 'client',
  });
  client = new Agent({ connect: { ca: ca.rootPem, cert: leaf.chainPem, key: leaf.keyPem } });
});

afterAll(async () => {
  await client.close();
});

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
