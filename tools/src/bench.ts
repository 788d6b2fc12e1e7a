/**
 * `pnpm bench`: throughput of the product against ceilings measured in the same run on the same
 * machine, reported as ratios (absolute numbers depend on the machine; ratios travel). Each server runs
 * in its own process so the load generator does not share its event loop. Results go to
 * `bench/results/<timestamp>.json`. Timed assertions do not belong in tests; they belong here.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request, Agent } from 'undici';
import { openDatabase } from '@cryptoutil/infra';
import { RoundRobinProxy } from '@cryptoutil/infra/round-robin';
import { keepAliveLoad, newConnectionLoad, type LoadResult, type LoadTarget } from './bench/load.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');

interface Running {
  target: LoadTarget;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

async function startCeiling(scenario: 'bare-express' | 'infra-defaults'): Promise<Running> {
  const child = fork(join(HERE, 'bench', 'ceiling-server.js'), [scenario], { stdio: 'inherit' });
  const { port, rootPem } = await new Promise<{ port: number; rootPem: string }>((done, fail) => {
    child.once('message', (message) => done(message as { port: number; rootPem: string }));
    child.once('exit', (code) => fail(new Error(`${scenario} server exited with ${code}`)));
  });
  return {
    target: {
      url: `https://localhost:${port}/echo`,
      ca: rootPem,
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    },
    stop: () => stopChild(child),
  };
}

const BENCH_AUDIENCE = 'https://kms.bench';

/** Node options for the service processes (`--cpu-prof <dir>` writes a V8 CPU profile of each). */
const serviceNodeArgs: string[] = [];

/** A stand-in Identity in its own process: its URL and a token with every KMS scope. */
async function startIssuer(): Promise<{ url: string; token: string; child: ChildProcess }> {
  const child = fork(join(HERE, 'bench', 'issuer-server.js'), [BENCH_AUDIENCE], { stdio: 'inherit' });
  const { url, token } = await new Promise<{ url: string; token: string }>((done, fail) => {
    child.once('message', (message) => done(message as { url: string; token: string }));
    child.once('exit', (code) => fail(new Error(`issuer exited with ${code}`)));
  });
  return { url, token, child };
}

/**
 * The real KMS process (dev unseal, in-memory SQLite) with one AES-256-GCM key; the target is encrypt.
 * With `bearer`, callers send an access token that the KMS validates (cached JWKS) and, encrypt being
 * sensitive, checks for revocation by introspection on every call (the default `sensitive-only`).
 */
async function startKmsEncrypt(options: { bearer: boolean }): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-kms-'));
  const config = join(dir, 'config.yml');
  const issuer = options.bearer ? await startIssuer() : undefined;
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      'database: { url: "sqlite::memory:" }',
      `tls: { dir: "${join(dir, 'tls')}" }`,
      'unseal: { mode: dev }',
      'log: { level: info }',
      // The limiters stay on the path (their cost is measured) but never refuse the load generator.
      'rate_limits:',
      '  crypto_per_client: { burst: 1000000, per_second: 1000000 }',
      '  crypto_per_ip: { burst: 1000000, per_second: 1000000 }',
      ...(issuer
        ? [
            'auth:',
            '  methods: [bearer]',
            '  identity:',
            `    issuer: ${issuer.url}`,
            `    audience: ${BENCH_AUDIENCE}`,
            '    client_secret: bench-introspection-secret',
          ]
        : []),
    ].join('\n'),
  );
  const auth: Record<string, string> = issuer ? { authorization: `Bearer ${issuer.token}` } : {};
  const { child, publicUrl } = await startKmsProcess(config, ['--dev']);
  const rootPem = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const dispatcher = new Agent({ connect: { ca: rootPem } });
  const created = await request(`${publicUrl}/service/api/v1/elastickey`, {
    method: 'POST',
    dispatcher,
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', description: 'bench', algorithm: 'A256GCM/dir' }),
  });
  const { elastic_key_id: id } = (await created.body.json()) as { elastic_key_id: string };
  await dispatcher.close();
  return {
    target: {
      url: `${publicUrl.replace('127.0.0.1', 'localhost')}/service/api/v1/elastickey/${id}/encrypt`,
      ca: rootPem,
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'hello',
    },
    stop: async () => {
      await stopChild(child);
      if (issuer) await stopChild(issuer.child);
    },
  };
}

/** Starts one KMS process with `config` and resolves with its public URL once it listens. */
async function startKmsProcess(
  config: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; publicUrl: string }> {
  const child = spawn(
    process.execPath,
    [...serviceNodeArgs, join(ROOT, 'apps/kms/dist/main.js'), '--config', config, ...extra],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const publicUrl = await new Promise<string>((done, fail) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"public_url":"([^"]+)"/.exec(output);
      if (match?.[1]) done(match[1]);
    });
    child.once('exit', (code) => fail(new Error(`kms exited with ${code}`)));
  });
  child.stdout?.resume();
  return { child, publicUrl };
}

/**
 * `instances` KMS processes on one PostgreSQL (`BENCH_DATABASE_URL`, else `TEST_DATABASE_URL`, else the
 * local server) behind a round-robin TCP proxy: the load's connections are spread over the processes,
 * which share the key hierarchy, keys, audit chain and rate-limit buckets through the database.
 */
async function startKmsCluster(instances: number): Promise<Running> {
  const url =
    process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_${Date.now()}`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-kms-cluster-'));
  const unseal = join(dir, 'unseal.secret');
  await writeFile(unseal, 'bench-unseal-secret-0123456789abcdef0123456789', { mode: 0o600 });
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      `database: { url: "${url}", schema: ${schema} }`,
      `tls: { dir: "${join(dir, 'tls')}" }`,
      `unseal: { mode: simple, secrets: ["file://${unseal}"] }`,
      'log: { level: info }',
      'rate_limits:',
      '  crypto_per_client: { burst: 1000000, per_second: 1000000 }',
      '  crypto_per_ip: { burst: 1000000, per_second: 1000000 }',
    ].join('\n'),
  );
  // One after the other: the first makes the key hierarchy and the CA the others use.
  const processes: { child: ChildProcess; publicUrl: string }[] = [];
  for (let n = 0; n < instances; n++) processes.push(await startKmsProcess(config, ['--dev']));
  const proxy = new RoundRobinProxy(
    processes.map(({ publicUrl }) => ({ host: '127.0.0.1', port: Number(new URL(publicUrl).port) })),
  );
  const port = await proxy.start();
  const rootPem = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const base = `https://localhost:${port}/service/api/v1`;
  const dispatcher = new Agent({ connect: { ca: rootPem } });
  const created = await request(`${base}/elastickey`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', description: 'bench', algorithm: 'A256GCM/dir' }),
  });
  const { elastic_key_id: id } = (await created.body.json()) as { elastic_key_id: string };
  await dispatcher.close();
  return {
    target: {
      url: `${base}/elastickey/${id}/encrypt`,
      ca: rootPem,
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    },
    stop: async () => {
      await Promise.all(processes.map(({ child }) => stopChild(child)));
      await proxy.stop();
      // The bench schema and the tenant schemas it names (the KMS calls them tenant_<id>).
      const db = await openDatabase({ url });
      await db.exec(`DO $$ DECLARE t record; BEGIN
        FOR t IN SELECT id FROM "${schema}".kms_tenants LOOP
          EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', 'tenant_' || replace(lower(t.id), '-', '_'));
        END LOOP;
      END $$; DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    },
  };
}

/**
 * The real Identity process with its demo data (SQLite in memory), as the client `kms-service` sees it:
 * `client_credentials` with `client_secret_basic` (a verified secret is remembered, so PBKDF2 runs once),
 * introspection of one of its tokens, or the JWKS.
 */
async function startIdentity(target: 'client-credentials' | 'introspection' | 'jwks'): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-identity-'));
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      'database: { url: "sqlite::memory:" }',
      `tls: { dir: "${join(dir, 'tls')}" }`,
      'secrets:',
      '  cookie_keys: [bench-cookie-key-0123456789abcdef0123456789]',
      '  signing_key_encryption: bench-at-rest-key-0123456789abcdef0123456789',
      'log: { level: info, access: false }',
      'rate_limits:',
      '  token_per_client: { burst: 1000000, per_second: 1000000 }',
      '  token_per_ip: { burst: 1000000, per_second: 1000000 }',
    ].join('\n'),
  );
  const child = spawn(
    process.execPath,
    [...serviceNodeArgs, join(ROOT, 'apps/identity/dist/main.js'), '--config', config, '--demo'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const issuer = await new Promise<string>((done, fail) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((text) => text.includes('"identity started"') && text.endsWith('}'));
      if (line) done((JSON.parse(line) as { issuer: string }).issuer);
    });
    child.once('exit', (code) => fail(new Error(`identity exited with ${code}`)));
  });
  child.stdout?.resume();
  const rootPem = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const secret = (await readFile(join(ROOT, 'deployments/identity/secrets/kms-service.secret'), 'utf8')).trim();
  const basic = `Basic ${Buffer.from(`kms-service:${secret}`).toString('base64')}`;
  const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
  const grant = 'grant_type=client_credentials&scope=kms%3Aread';
  const stop = () => stopChild(child);
  if (target === 'jwks') return { target: { url: `${issuer}/jwks`, ca: rootPem, method: 'GET' }, stop };
  if (target === 'client-credentials') {
    return { target: { url: `${issuer}/token`, ca: rootPem, method: 'POST', headers: form, body: grant }, stop };
  }
  const dispatcher = new Agent({ connect: { ca: rootPem } });
  const issued = await request(`${issuer}/token`, { method: 'POST', dispatcher, headers: form, body: grant });
  const { access_token: token } = (await issued.body.json()) as { access_token: string };
  await dispatcher.close();
  return {
    target: {
      url: `${issuer}/token/introspection`,
      ca: rootPem,
      method: 'POST',
      headers: form,
      body: `token=${token}`,
    },
    stop,
  };
}

const SCENARIOS: Record<string, () => Promise<Running>> = {
  'bare-express': () => startCeiling('bare-express'),
  'infra-defaults': () => startCeiling('infra-defaults'),
  'kms-encrypt': () => startKmsEncrypt({ bearer: false }),
  'kms-encrypt-bearer': () => startKmsEncrypt({ bearer: true }),
  'identity-client-credentials': () => startIdentity('client-credentials'),
  'identity-introspection': () => startIdentity('introspection'),
  'identity-jwks': () => startIdentity('jwks'),
  // Scale-out on one PostgreSQL (issue #17): the same encrypt with 1, 2 and 3 processes.
  'kms-encrypt-pg-x1': () => startKmsCluster(1),
  'kms-encrypt-pg-x2': () => startKmsCluster(2),
  'kms-encrypt-pg-x3': () => startKmsCluster(3),
};

interface Row {
  scenario: string;
  mode: 'keep-alive' | 'new-connection';
  result: LoadResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      scenario: { type: 'string', multiple: true },
      'cpu-prof': { type: 'string' },
    },
  });
  if (values['cpu-prof']) serviceNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`);
  const durationMs = Number(values.duration) * 1000;
  const connections = Number(values.connections);
  const names = values.scenario ?? Object.keys(SCENARIOS);
  const unknown = names.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0 || !(durationMs > 0) || !(connections > 0)) {
    process.stderr.write(
      `usage: pnpm bench [--duration s] [--connections n] [--scenario ${Object.keys(SCENARIOS).join('|')}]...\n`,
    );
    process.exit(2);
  }
  const rows: Row[] = [];
  for (const name of names) {
    const start = SCENARIOS[name];
    if (!start) continue;
    const running = await start();
    try {
      await keepAliveLoad(running.target, { connections, durationMs: 1000 }); // warm-up (JIT, caches)
      rows.push({
        scenario: name,
        mode: 'keep-alive',
        result: await keepAliveLoad(running.target, { connections, durationMs }),
      });
      rows.push({
        scenario: name,
        mode: 'new-connection',
        result: await newConnectionLoad(running.target, { connections, durationMs }),
      });
    } finally {
      await running.stop();
    }
    process.stdout.write(`• ${name} done\n`);
  }
  const ceiling = (mode: Row['mode']) =>
    rows.find((row) => row.scenario === 'bare-express' && row.mode === mode)?.result.requestsPerSecond;
  const table = rows.map((row) => {
    const base = ceiling(row.mode);
    return {
      scenario: row.scenario,
      mode: row.mode,
      'req/s': Math.round(row.result.requestsPerSecond),
      'p50 ms': Number(row.result.p50Ms.toFixed(2)),
      'p99 ms': Number(row.result.p99Ms.toFixed(2)),
      errors: row.result.errors,
      'ratio to bare-express': base ? Number((row.result.requestsPerSecond / base).toFixed(3)) : null,
    };
  });
  console.table(table);
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model };
  await writeFile(file, JSON.stringify({ machine, durationMs, connections, results: table }, null, 2));
  process.stdout.write(`results: ${file}\n`);
  if (rows.some((row) => row.result.errors > 0)) process.exit(1);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
