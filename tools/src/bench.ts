/**
 * `pnpm bench`: throughput of the product against ceilings measured in the same run on the same
 * machine, reported as ratios (absolute numbers depend on the machine; ratios travel). Each server runs
 * in its own process so the load generator does not share its event loop. Every scenario runs at each
 * connection count (default 1, 10, 50) after a warm-up; the services run with production settings (TLS
 * 1.3, authentication, audit, rate limits on the path). Results go to `bench/results/<timestamp>.json`;
 * `pnpm bench:compare` compares them with `bench/baseline.json`. Timed assertions do not belong in
 * tests; they belong here.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request, Agent, fetch as undiciFetch } from 'undici';
import {
  FormBrowser,
  PBKDF2_DEFAULT_ITERATIONS,
  formAction,
  formValue,
  hashPassword,
  openDatabase,
} from '@cryptoutil/infra';
import { RoundRobinProxy } from '@cryptoutil/infra/round-robin';
import type { CeilingScenario } from './bench/ceiling-server.js';
import type { BenchRow, BenchRun } from './bench/compare.js';
import {
  flowLoad,
  keepAliveLoad,
  newConnectionLoad,
  type LoadOptions,
  type LoadResult,
  type LoadTarget,
} from './bench/load.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BENCH_AUDIENCE = 'https://kms.bench';
const pbkdf2Async = promisify(pbkdf2);
const PLAINTEXT_1KIB = Buffer.alloc(1024, 'a').toString();
/**
 * Batch sizes: 1,000 items of 32 bytes (a field or a data key each) to encrypt (a 60 KB body), and 1,000 JWEs of
 * them to decrypt (a 200 KB body).
 */
const BATCH_ENCRYPT_ITEMS = 1000;
const BATCH_DECRYPT_ITEMS = 1000;
const batchBody = (items: number, field: 'data' | 'jwe', value: string) =>
  JSON.stringify({ items: Array.from({ length: items }, () => ({ [field]: value })) });

/** Node options for the service processes (`--cpu-prof <dir>` writes a V8 CPU profile of each). */
const serviceNodeArgs: string[] = [];

type Mode = BenchRow['mode'];

/** A running service process: what the scenarios on it target, and how to read its memory. */
interface Service {
  name: string;
  /** Milliseconds from spawn to listening (its "started" log line). */
  readyMs: number;
  pids: number[];
  targets: Record<string, LoadTarget>;
  /** Multi-request flows (a sign-in, a refresh-token chain), by name. */
  flows?: Record<string, Flow>;
  /** Stops the process and starts it again on its data; resolves with the milliseconds until it listens. */
  restart?(): Promise<number>;
  stop(): Promise<void>;
}

/** A flow run by `flowLoad`: `prepare` gives each of `workers` its own state before the clock starts. */
interface Flow {
  prepare?(workers: number): Promise<void>;
  step(worker: number): Promise<void>;
}

interface Scenario {
  name: string;
  service: string;
  /** The key in the service's `targets` (or `flows` in mode `flow`). */
  target: string;
  modes: Mode[];
  note: string;
  /** The scenario whose req/s at the same connection count is this one's ceiling (default by mode). */
  ceiling?: string;
  /** Connection counts for this scenario instead of `--connections`. */
  levels?: number[];
  /** Items per request of a batch scenario: its rows also give items/s. */
  items?: number;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

/** Resident memory of a process in MiB: now (`VmRSS`) and its peak so far (`VmHWM`), from /proc. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** The child processes of `pid` (a service's workers), from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** Starts a service process and resolves once `started(line)` finds what it needs in its stdout. */
async function spawnService<T>(
  script: string,
  args: string[],
  started: (line: string) => T | undefined,
): Promise<{ child: ChildProcess; value: T; readyMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...serviceNodeArgs, join(ROOT, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const value = await new Promise<T>((done, fail) => {
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const found = started(line);
        if (found !== undefined) return done(found);
      }
    });
    child.once('exit', (code) => fail(new Error(`${script} exited with ${code}`)));
  });
  child.stdout?.resume();
  return { child, value, readyMs: performance.now() - t0 };
}

async function startCeiling(kind: CeilingScenario): Promise<Service> {
  const t0 = performance.now();
  const child = fork(join(HERE, 'bench', 'ceiling-server.js'), [kind], { stdio: 'inherit' });
  const { port, rootPem } = await new Promise<{ port: number; rootPem: string }>((done, fail) => {
    child.once('message', (message) => done(message as { port: number; rootPem: string }));
    child.once('exit', (code) => fail(new Error(`${kind} server exited with ${code}`)));
  });
  const target: LoadTarget = {
    url: `https://localhost:${port}/echo`,
    ca: rootPem,
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hello',
  };
  return {
    name: kind,
    readyMs: performance.now() - t0,
    pids: child.pid ? [child.pid] : [],
    targets: { hello: target },
    stop: () => stopChild(child),
  };
}

/** A stand-in Identity in its own process: its URL and a token with every KMS scope. */
async function startIssuer(): Promise<{ url: string; token: string; child: ChildProcess }> {
  const child = fork(join(HERE, 'bench', 'issuer-server.js'), [BENCH_AUDIENCE], { stdio: 'inherit' });
  const { url, token } = await new Promise<{ url: string; token: string }>((done, fail) => {
    child.once('message', (message) => done(message as { url: string; token: string }));
    child.once('exit', (code) => fail(new Error(`issuer exited with ${code}`)));
  });
  return { url, token, child };
}

/** The database lines of a service's config, and what to drop afterwards (PostgreSQL with `--pg`). */
function databaseFor(pg: boolean, product: string, dir?: string): { url: string; schema?: string } {
  if (!pg) return { url: dir ? `sqlite:${join(dir, `${product}.sqlite`)}` : 'sqlite::memory:' };
  const url =
    process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  return { url, schema: `bench_${product}_${Date.now()}` };
}

/** Drops a bench schema; for the KMS also the tenant schemas it names (the KMS calls them tenant_<id>). */
async function dropBenchSchema(url: string, schema: string, kms: boolean): Promise<void> {
  const db = await openDatabase({ url });
  if (kms) {
    await db.exec(`DO $$ DECLARE t record; BEGIN
      FOR t IN SELECT id FROM "${schema}".kms_tenants LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', 'tenant_' || replace(lower(t.id), '-', '_'));
      END LOOP;
    END $$`);
  }
  await db.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
}

const databaseLine = ({ url, schema }: { url: string; schema?: string }) =>
  `database: { url: "${url}"${schema ? `, schema: ${schema}` : ''} }`;

/**
 * Resolves a service's URL from its log: the URL its (first) "started" line names, once every worker
 * listens (a single process: at once; with workers, at the supervisor's "workers started" line).
 */
function readyWhen(app: 'kms' | 'identity', workers: number, urlOf: (line: string) => string | undefined) {
  let url: string | undefined;
  return (line: string): string | undefined => {
    url ??= line.includes(`"${app} started"`) ? urlOf(line) : undefined;
    return url && (workers === 1 || line.includes(`"${app} workers started"`)) ? url : undefined;
  };
}

/** Starts one KMS process with `config`; resolves with its public URL once it (every worker) listens. */
function startKmsProcess(config: string, extra: string[] = [], workers = 1) {
  return spawnService(
    'apps/kms/dist/main.js',
    ['--config', config, ...extra],
    readyWhen('kms', workers, (line) => /"public_url":"([^"]+)"/.exec(line)?.[1]),
  );
}

const API_KEY_ID = 'bench';
const API_KEY_SECRET = 'bench-api-key-secret-0123456789abcdef0123456789abcdef';

/**
 * The real KMS process with production settings: dev unseal, TLS 1.3, audit, rate limits (raised so they
 * never refuse the load generator, but on the path), callers authenticated by an API key or by an access
 * token from a stand-in Identity (validated by the cached JWKS; encrypt, decrypt, sign and generate being
 * sensitive, checked for revocation by introspection on every call: the default `sensitive-only`).
 * Keys: AES-256-GCM `dir` and `A256KW`, ES256, EdDSA, RS256.
 */
async function startKms(
  pg: boolean,
  options: { revocation?: 'sensitive-only' | 'interval'; workers?: number } = {},
): Promise<Service> {
  const { revocation = 'sensitive-only', workers = 1 } = options;
  const dir = await mkdtemp(join(tmpdir(), 'bench-kms-'));
  const config = join(dir, 'config.yml');
  const issuer = await startIssuer();
  const database = databaseFor(pg, 'kms', dir);
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      databaseLine(database),
      `tls: { dir: "${join(dir, 'tls')}" }`,
      'unseal: { mode: dev }',
      'log: { level: info }',
      `workers: ${workers}`,
      'rate_limits:',
      '  crypto_per_client: { burst: 1000000, per_second: 1000000 }',
      '  crypto_per_ip: { burst: 1000000, per_second: 1000000 }',
      'auth:',
      '  methods: [bearer, api_key]',
      '  identity:',
      `    issuer: ${issuer.url}`,
      `    audience: ${BENCH_AUDIENCE}`,
      '    client_secret: bench-introspection-secret',
      `    revocation_check: ${revocation}`,
      '  api_keys:',
      `    - { id: ${API_KEY_ID}, key_hash: "${await hashPassword(API_KEY_SECRET)}", scopes: [kms:admin] }`,
    ].join('\n'),
  );
  const { child, value: publicUrl, readyMs } = await startKmsProcess(config, ['--dev'], workers);
  let current = child;
  const ca = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const base = `${publicUrl.replace('127.0.0.1', 'localhost')}/service/api/v1`;
  const apiKey = { authorization: `ApiKey ${API_KEY_ID}.${API_KEY_SECRET}` };
  const bearer = { authorization: `Bearer ${issuer.token}` };
  const dispatcher = new Agent({ connect: { ca } });
  const call = async (path: string, body: string, json = false): Promise<string> => {
    const response = await request(`${base}${path}`, {
      method: 'POST',
      dispatcher,
      headers: { ...apiKey, 'content-type': json ? 'application/json' : 'text/plain' },
      body,
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`KMS ${path}: ${response.statusCode} ${text}`);
    return text;
  };
  const keys: Record<string, string> = {};
  for (const [name, algorithm] of Object.entries({
    dir: 'A256GCM/dir',
    kw: 'A256GCM/A256KW',
    es256: 'ES256',
    eddsa: 'EdDSA',
    rs256: 'RS256',
  })) {
    const created = JSON.parse(
      await call('/elastickey', JSON.stringify({ name: `bench-${name}`, description: 'bench', algorithm }), true),
    ) as { elastic_key_id: string };
    keys[name] = created.elastic_key_id;
  }
  const jwe = await call(`/elastickey/${keys.dir}/encrypt`, PLAINTEXT_1KIB);
  const jws = await call(`/elastickey/${keys.es256}/sign`, PLAINTEXT_1KIB);
  const small = randomBytes(32).toString('base64url');
  const smallJwe = (
    JSON.parse(await call(`/elastickey/${keys.dir}/encrypt/batch`, batchBody(1, 'data', small), true)) as {
      results: { jwe: string }[];
    }
  ).results[0]?.jwe;
  // Rewrap takes a JWE of an older version: rotate once after making it.
  await call(`/elastickey/${keys.dir}/materialkey`, '', true);
  await dispatcher.close();
  const post = (path: string, body: string, auth: Record<string, string>): LoadTarget => ({
    url: `${base}${path}`,
    ca,
    method: 'POST',
    headers: { ...auth, 'content-type': path.endsWith('/batch') ? 'application/json' : 'text/plain' },
    body,
  });
  return {
    name: `kms (${pg ? 'postgres' : 'sqlite'}${revocation === 'interval' ? ', revocation_check interval' : ''}, ${workers} worker(s))`,
    readyMs,
    pids: [child.pid ?? 0, ...(await childrenOf(child.pid ?? 0))],
    // Every operation with an API key (`<op>-apikey`) and with a bearer token (`<op>-bearer`).
    targets: Object.fromEntries(
      Object.entries({
        'encrypt-dir': [`/elastickey/${keys.dir}/encrypt`, PLAINTEXT_1KIB],
        'encrypt-kw': [`/elastickey/${keys.kw}/encrypt`, PLAINTEXT_1KIB],
        'decrypt-dir': [`/elastickey/${keys.dir}/decrypt`, jwe],
        'rewrap-dir': [`/elastickey/${keys.dir}/rewrap`, jwe],
        'encrypt-batch': [`/elastickey/${keys.dir}/encrypt/batch`, batchBody(BATCH_ENCRYPT_ITEMS, 'data', small)],
        'decrypt-batch': [
          `/elastickey/${keys.dir}/decrypt/batch`,
          batchBody(BATCH_DECRYPT_ITEMS, 'jwe', smallJwe ?? ''),
        ],
        'sign-es256': [`/elastickey/${keys.es256}/sign`, PLAINTEXT_1KIB],
        'sign-eddsa': [`/elastickey/${keys.eddsa}/sign`, PLAINTEXT_1KIB],
        'sign-rs256': [`/elastickey/${keys.rs256}/sign`, PLAINTEXT_1KIB],
        'verify-es256': [`/elastickey/${keys.es256}/verify`, jws],
        generate: [`/elastickey/${keys.dir}/generate?alg=AES-256`, ''],
        list: ['/elastickeys', undefined],
      } satisfies Record<string, [string, string | undefined]>).flatMap(([operation, [path, body]]) =>
        Object.entries({ apikey: apiKey, bearer }).map(([kind, auth]): [string, LoadTarget] => [
          `${operation}-${kind}`,
          body === undefined ? { url: `${base}${path}`, ca, method: 'GET', headers: auth } : post(path, body, auth),
        ]),
      ),
    ),
    restart: async () => {
      await stopChild(current);
      const again = await startKmsProcess(config, ['--dev'], workers);
      current = again.child;
      return again.readyMs;
    },
    stop: async () => {
      await stopChild(current);
      await stopChild(issuer.child);
      if (database.schema) await dropBenchSchema(database.url, database.schema, true);
    },
  };
}

/**
 * `instances` KMS processes on one PostgreSQL (`BENCH_DATABASE_URL`, else `TEST_DATABASE_URL`, else the
 * local server) behind a round-robin TCP proxy: the load's connections are spread over the processes,
 * which share the key hierarchy, keys, audit chain and rate-limit buckets through the database.
 */
async function startKmsCluster(instances: number): Promise<Service> {
  const database = databaseFor(true, 'cluster');
  const dir = await mkdtemp(join(tmpdir(), 'bench-kms-cluster-'));
  const unseal = join(dir, 'unseal.secret');
  await writeFile(unseal, 'bench-unseal-secret-0123456789abcdef0123456789', { mode: 0o600 });
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      databaseLine(database),
      `tls: { dir: "${join(dir, 'tls')}" }`,
      `unseal: { mode: simple, secrets: ["file://${unseal}"] }`,
      'log: { level: info }',
      'rate_limits:',
      '  crypto_per_client: { burst: 1000000, per_second: 1000000 }',
      '  crypto_per_ip: { burst: 1000000, per_second: 1000000 }',
    ].join('\n'),
  );
  // One after the other: the first makes the key hierarchy and the CA the others use.
  const processes: Awaited<ReturnType<typeof startKmsProcess>>[] = [];
  for (let n = 0; n < instances; n++) processes.push(await startKmsProcess(config, ['--dev']));
  const proxy = new RoundRobinProxy(
    processes.map(({ value }) => ({ host: '127.0.0.1', port: Number(new URL(value).port) })),
  );
  const port = await proxy.start();
  const ca = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const base = `https://localhost:${port}/service/api/v1`;
  const dispatcher = new Agent({ connect: { ca } });
  const created = await request(`${base}/elastickey`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', description: 'bench', algorithm: 'A256GCM/dir' }),
  });
  const { elastic_key_id: id } = (await created.body.json()) as { elastic_key_id: string };
  await dispatcher.close();
  return {
    name: `kms x${instances} (postgres)`,
    readyMs: Math.max(...processes.map((p) => p.readyMs)),
    pids: processes.map(({ child }) => child.pid ?? 0),
    targets: {
      encrypt: {
        url: `${base}/elastickey/${id}/encrypt`,
        ca,
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: PLAINTEXT_1KIB,
      },
    },
    stop: async () => {
      await Promise.all(processes.map(({ child }) => stopChild(child)));
      await proxy.stop();
      if (database.schema) await dropBenchSchema(database.url, database.schema, true);
    },
  };
}

const SPA_REDIRECT = 'https://127.0.0.1:8082/demo/rp/callback';

/** A token request of the demo's public client; throws unless it is answered 200. */
async function spaToken(
  fetcher: typeof fetch,
  issuer: string,
  body: Record<string, string>,
): Promise<{ refresh_token?: string }> {
  const response = await fetcher(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'demo-spa', ...body }).toString(),
  });
  if (response.status !== 200) throw new Error(`token request answered ${response.status}`);
  return (await response.json()) as { refresh_token?: string };
}

/** `demo-user` signs in through the form (authorization code + PKCE); resolves with the code and verifier. */
async function signIn(fetcher: typeof fetch, issuer: string): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorization = `${issuer}/auth?${new URLSearchParams({
    client_id: 'demo-spa',
    response_type: 'code',
    redirect_uri: SPA_REDIRECT,
    scope: 'openid offline_access kms:encrypt',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  }).toString()}`;
  const browser = new FormBrowser(fetcher, issuer);
  const page = await browser.follow(authorization);
  const html = await page.response.text();
  const done = await browser.follow(new URL(formAction(html), issuer).toString(), {
    form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
  });
  await done.response.body?.cancel();
  const code = new URL(done.url).searchParams.get('code');
  if (!code) throw new Error(`sign-in ended at ${done.url.split('?')[0]} without a code`);
  return { code, verifier };
}

async function firstRefreshToken(fetcher: typeof fetch, issuer: string): Promise<string> {
  const { code, verifier } = await signIn(fetcher, issuer);
  const tokens = await spaToken(fetcher, issuer, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: SPA_REDIRECT,
    code_verifier: verifier,
  });
  if (!tokens.refresh_token) throw new Error('no refresh token');
  return tokens.refresh_token;
}

/**
 * The real Identity process with its demo data, as the client `kms-service` sees it: `client_credentials`
 * with `client_secret_basic` (a verified secret is remembered, so PBKDF2 runs once), introspection of one
 * of its tokens, and the JWKS.
 */
async function startIdentity(pg: boolean, workers = 1, label = ''): Promise<Service> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-identity-'));
  const config = join(dir, 'config.yml');
  const database = databaseFor(pg, 'identity', dir);
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      databaseLine(database),
      `tls: { dir: "${join(dir, 'tls')}" }`,
      'secrets:',
      '  cookie_keys: [bench-cookie-key-0123456789abcdef0123456789]',
      '  signing_key_encryption: bench-at-rest-key-0123456789abcdef0123456789',
      'log: { level: info, access: false }',
      `workers: ${workers}`,
      'rate_limits:',
      '  token_per_client: { burst: 1000000, per_second: 1000000 }',
      '  token_per_ip: { burst: 1000000, per_second: 1000000 }',
      '  login_per_ip: { burst: 1000000, per_second: 1000000 }',
    ].join('\n'),
  );
  const spawnIdentity = () =>
    spawnService(
      'apps/identity/dist/main.js',
      ['--config', config, '--demo'],
      readyWhen('identity', workers, (line) => (JSON.parse(line) as { issuer?: string }).issuer),
    );
  const { child, value: issuer, readyMs } = await spawnIdentity();
  let current = child;
  const ca = await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8');
  const secret = (await readFile(join(ROOT, 'deployments/identity/secrets/kms-service.secret'), 'utf8')).trim();
  const basic = `Basic ${Buffer.from(`kms-service:${secret}`).toString('base64')}`;
  const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
  const grant = 'grant_type=client_credentials&scope=kms%3Aread';
  const dispatcher = new Agent({ connect: { ca } });
  const issued = await request(`${issuer}/token`, { method: 'POST', dispatcher, headers: form, body: grant });
  const { access_token: token } = (await issued.body.json()) as { access_token: string };
  await dispatcher.close();
  const flowAgent = new Agent({ connect: { ca } });
  const fetcher = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: flowAgent })) as unknown as typeof fetch;
  const refreshTokens: string[] = [];
  return {
    name: `identity (${pg ? 'postgres' : 'sqlite'}, ${workers} worker(s)${label ? `, ${label}` : ''})`,
    readyMs,
    pids: [child.pid ?? 0, ...(await childrenOf(child.pid ?? 0))],
    targets: {
      'client-credentials': { url: `${issuer}/token`, ca, method: 'POST', headers: form, body: grant },
      introspection: {
        url: `${issuer}/token/introspection`,
        ca,
        method: 'POST',
        headers: form,
        body: `token=${token}`,
      },
      jwks: { url: `${issuer}/jwks`, ca, method: 'GET' },
    },
    flows: {
      // A person signing in: authorization request, the login page, the form posted with the password
      // (PBKDF2-SHA256, 600,000 iterations), redirects up to the client's callback with a code.
      login: { step: async () => void (await signIn(fetcher, issuer)) },
      // A client refreshing with rotation: each worker follows its own chain of refresh tokens.
      refresh: {
        prepare: async (workers) => {
          while (refreshTokens.length < workers) refreshTokens.push(await firstRefreshToken(fetcher, issuer));
        },
        step: async (worker) => {
          const rotated = await spaToken(fetcher, issuer, {
            grant_type: 'refresh_token',
            refresh_token: refreshTokens[worker] ?? '',
          });
          refreshTokens[worker] = rotated.refresh_token ?? '';
        },
      },
    },
    restart: async () => {
      await stopChild(current);
      const again = await spawnIdentity();
      current = again.child;
      return again.readyMs;
    },
    stop: async () => {
      await flowAgent.close();
      await stopChild(current);
      if (database.schema) await dropBenchSchema(database.url, database.schema, false);
    },
  };
}

/** How one scenario in one mode is loaded: a fixed request (keep-alive or new connections) or a flow. */
function runnerFor(
  service: Service,
  scenario: Scenario,
  mode: Mode,
): { prepare(workers: number): Promise<void>; load(options: LoadOptions): Promise<LoadResult> } {
  if (mode === 'flow') {
    const flow = service.flows?.[scenario.target];
    if (!flow) throw new Error(`${service.name} has no flow ${scenario.target}`);
    return {
      prepare: async (workers) => flow.prepare?.(workers),
      load: (options) => flowLoad((worker) => flow.step(worker), options),
    };
  }
  const target = service.targets[scenario.target];
  if (!target) throw new Error(`${service.name} has no target ${scenario.target}`);
  const load = mode === 'keep-alive' ? keepAliveLoad : newConnectionLoad;
  return { prepare: async () => undefined, load: (options) => load(target, options) };
}

/** PBKDF2-HMAC-SHA256 with 600,000 iterations alone, in this process: the ceiling for sign-ins. */
async function startPbkdf2(): Promise<Service> {
  const salt = randomBytes(16);
  return {
    name: 'pbkdf2 alone (bench process)',
    readyMs: 0,
    pids: [],
    targets: {},
    flows: {
      hash: {
        step: () => pbkdf2Async('bench-password', salt, PBKDF2_DEFAULT_ITERATIONS, 32, 'sha256').then(() => undefined),
      },
    },
    stop: async () => undefined,
  };
}

const KEEP_ALIVE: Mode[] = ['keep-alive'];
const NEW_CONNECTION: Mode[] = ['new-connection'];

const kms = (name: string, target: string, note: string): Scenario => ({
  name: `kms-${name}`,
  service: 'kms',
  target,
  modes: KEEP_ALIVE,
  note,
});

const SCENARIOS: Scenario[] = [
  { name: 'bare-express', service: 'bare-express', target: 'hello', modes: KEEP_ALIVE, note: 'keep-alive ceiling' },
  { name: 'bare-https', service: 'bare-https', target: 'hello', modes: NEW_CONNECTION, note: 'new-connection ceiling' },
  {
    name: 'infra-defaults',
    service: 'infra-defaults',
    target: 'hello',
    modes: KEEP_ALIVE,
    note: 'Express with the shared security defaults and problem handler: what the plumbing costs',
  },
  kms('encrypt', 'encrypt-dir-apikey', 'encrypt 1 KiB, A256GCM/dir, API key'),
  kms('encrypt-bearer', 'encrypt-dir-bearer', 'the same with a bearer token (JWKS + introspection)'),
  {
    name: 'kms-encrypt-bearer-interval',
    service: 'kms-interval',
    target: 'encrypt-dir-bearer',
    modes: KEEP_ALIVE,
    note: 'bearer with revocation_check interval (introspection answer reused for 300 s)',
  },
  {
    name: 'kms-encrypt-workers2',
    service: 'kms-workers2',
    target: 'encrypt-dir-apikey',
    modes: KEEP_ALIVE,
    note: 'kms-encrypt with workers: 2 (node:cluster)',
  },
  ...(
    [
      ['encrypt-a256kw', 'encrypt-kw', 'encrypt 1 KiB, A256GCM/A256KW'],
      ['decrypt', 'decrypt-dir', 'decrypt 1 KiB, A256GCM/dir'],
      ['rewrap', 'rewrap-dir', 'rewrap a 1 KiB JWE of the previous version, A256GCM/dir'],
      ['sign-es256', 'sign-es256', 'sign 1 KiB, ES256'],
      ['sign-eddsa', 'sign-eddsa', 'sign 1 KiB, EdDSA'],
      ['sign-rs256', 'sign-rs256', 'sign 1 KiB, RS256'],
      ['verify-es256', 'verify-es256', 'verify an ES256 JWS'],
      ['generate', 'generate', 'data key AES-256 wrapped by A256GCM/dir'],
      ['list', 'list', 'list elastic keys'],
    ] as const
  ).flatMap(([name, operation, what]) => [
    kms(name, `${operation}-apikey`, `${what}, API key`),
    kms(`${name}-bearer`, `${operation}-bearer`, `${what}, bearer token (JWKS; introspection if sensitive)`),
  ]),
  ...(
    [
      ['encrypt-batch', 'encrypt-batch', BATCH_ENCRYPT_ITEMS, 'batch encrypt, 1,000 items of 32 B, A256GCM/dir'],
      ['decrypt-batch', 'decrypt-batch', BATCH_DECRYPT_ITEMS, 'batch decrypt, 1,000 JWEs of 32 B, A256GCM/dir'],
    ] as const
  ).map(([name, operation, items, what]) => ({
    ...kms(name, `${operation}-apikey`, `${what}, API key (req/s are calls; items/s = req/s × ${items})`),
    items,
    // 50 connections of 1,000 items each would only measure queueing (and the request timeout).
    levels: [1, 10],
  })),
  {
    name: 'identity-client-credentials',
    service: 'identity',
    target: 'client-credentials',
    modes: ['keep-alive', 'new-connection'],
    note: 'client_credentials, client_secret_basic',
  },
  {
    name: 'identity-introspection',
    service: 'identity',
    target: 'introspection',
    modes: KEEP_ALIVE,
    note: 'RFC 7662',
  },
  { name: 'identity-jwks', service: 'identity', target: 'jwks', modes: KEEP_ALIVE, note: 'JWKS' },
  {
    name: 'identity-refresh',
    service: 'identity',
    target: 'refresh',
    modes: ['flow'],
    note: 'refresh with rotation (demo-spa), each connection its own chain',
  },
  {
    name: 'pbkdf2-alone',
    service: 'pbkdf2',
    target: 'hash',
    modes: ['flow'],
    levels: [1, 8],
    note: 'PBKDF2-HMAC-SHA256 600,000 iterations in the bench process: the sign-in ceiling',
  },
  {
    name: 'identity-login',
    service: 'identity-login',
    target: 'login',
    modes: ['flow'],
    levels: [1, 8],
    ceiling: 'pbkdf2-alone',
    note: 'demo-user signs in through the form (PBKDF2 600,000), to the callback with a code',
  },
  {
    name: 'identity-client-credentials-workers2',
    service: 'identity-workers2',
    target: 'client-credentials',
    modes: ['keep-alive', 'new-connection'],
    note: 'identity-client-credentials with workers: 2 (node:cluster)',
  },
  ...[1, 2, 3].map((n) => ({
    name: `kms-encrypt-pg-x${n}`,
    service: `kms-pg-x${n}`,
    target: 'encrypt',
    modes: KEEP_ALIVE,
    note: `${n} KMS process(es) on one PostgreSQL behind round-robin, no auth`,
  })),
];

const CEILING: Record<Mode, string> = {
  'keep-alive': 'bare-express',
  'new-connection': 'bare-https',
  flow: 'bare-express',
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '3' },
      connections: { type: 'string', default: '1,10,50' },
      scenario: { type: 'string', multiple: true },
      pg: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const levels = values.connections.split(',').map(Number);
  const wanted = values.scenario ?? SCENARIOS.map((s) => s.name);
  const unknown = wanted.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0 || !(durationMs > 0) || !levels.every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write(
      `usage: pnpm bench [--duration s] [--connections 1,10,50] [--pg] [--cpu-prof dir] [--scenario name]...\n` +
        `scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
    );
    process.exit(2);
  }
  if (values['cpu-prof']) serviceNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`);
  // The ceilings run whenever a scenario in their mode does: ratios need them from the same run.
  const ceilingsOf = (s: Scenario) => (s.ceiling ? [s.ceiling] : s.modes.map((mode) => CEILING[mode]));
  const chosen = SCENARIOS.filter(
    (s) =>
      wanted.includes(s.name) ||
      SCENARIOS.some((other) => wanted.includes(other.name) && ceilingsOf(other).includes(s.name)),
  );
  const starters: Record<string, () => Promise<Service>> = {
    'bare-express': () => startCeiling('bare-express'),
    'bare-https': () => startCeiling('bare-https'),
    'infra-defaults': () => startCeiling('infra-defaults'),
    kms: () => startKms(values.pg),
    'kms-interval': () => startKms(values.pg, { revocation: 'interval' }),
    'kms-workers2': () => startKms(values.pg, { workers: 2 }),
    'identity-workers2': () => startIdentity(values.pg, 2),
    'identity-login': () => startIdentity(values.pg, 1, 'sign-ins'),
    pbkdf2: startPbkdf2,
    identity: () => startIdentity(values.pg),
    'kms-pg-x1': () => startKmsCluster(1),
    'kms-pg-x2': () => startKmsCluster(2),
    'kms-pg-x3': () => startKmsCluster(3),
  };
  const rows: BenchRow[] = [];
  const memory: {
    service: string;
    'ready ms': number;
    'idle RSS MiB': number;
    'peak RSS MiB': number;
    'restart ms': number | null;
  }[] = [];
  const services = [...new Set(chosen.map((s) => s.service))];
  for (const serviceName of services) {
    const start = starters[serviceName];
    if (!start) continue;
    process.stdout.write(`• starting ${serviceName}\n`);
    const service = await start();
    const idle = await Promise.all(service.pids.map(memoryOf));
    try {
      for (const scenario of chosen.filter((s) => s.service === serviceName)) {
        const scenarioLevels = scenario.levels ?? levels;
        for (const mode of scenario.modes) {
          const run = runnerFor(service, scenario, mode);
          await run.prepare(Math.max(...scenarioLevels));
          await run.load({ connections: Math.max(...scenarioLevels), durationMs: 1000 }); // warm-up (JIT, caches)
          for (const connections of scenarioLevels) {
            const result = await run.load({ connections, durationMs });
            rows.push({
              scenario: scenario.name,
              mode,
              connections,
              // Slow flows (sign-ins) keep a decimal, so their ratios are not rounding noise.
              'req/s':
                result.requestsPerSecond < 100
                  ? Number(result.requestsPerSecond.toFixed(1))
                  : Math.round(result.requestsPerSecond),
              ...(scenario.items ? { 'items/s': Math.round(result.requestsPerSecond * scenario.items) } : {}),
              'p50 ms': Number(result.p50Ms.toFixed(2)),
              'p99 ms': Number(result.p99Ms.toFixed(2)),
              errors: result.errors,
              ratio: null,
            });
            process.stdout.write(
              `  ${scenario.name} ${mode} c=${connections}: ${Math.round(result.requestsPerSecond)} req/s` +
                `${scenario.items ? ` (${Math.round(result.requestsPerSecond * scenario.items)} items/s)` : ''}` +
                `${result.errors > 0 ? `, ${result.errors} errors` : ''}\n`,
            );
          }
        }
      }
      const peak = await Promise.all(service.pids.map(memoryOf));
      if (service.pids.length > 0) {
        memory.push({
          service: service.name,
          'ready ms': Math.round(service.readyMs),
          'idle RSS MiB': Math.round(Math.max(...idle.map((m) => m.rss))),
          'peak RSS MiB': Math.round(Math.max(...peak.map((m) => m.peak))),
          // Ready again on the data it now holds (the issue's "ready within 2 s on existing data").
          'restart ms': service.restart ? Math.round(await service.restart()) : null,
        });
      }
    } finally {
      await service.stop();
    }
  }
  const ceilings = new Set([...Object.values(CEILING), ...SCENARIOS.flatMap((s) => (s.ceiling ? [s.ceiling] : []))]);
  for (const row of rows) {
    if (ceilings.has(row.scenario)) continue;
    const scenario = SCENARIOS.find((s) => s.name === row.scenario);
    const ceilingName = scenario?.ceiling ?? CEILING[row.mode];
    const ceiling = rows.find((other) => other.scenario === ceilingName && other.connections === row.connections);
    if (ceiling && ceiling !== row && ceiling['req/s'] > 0) {
      row.ratio = Number((row['req/s'] / ceiling['req/s']).toFixed(3));
    }
  }
  console.table(rows);
  console.table(memory);
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const run: BenchRun & { database: string; services: typeof memory; notes: Record<string, string> } = {
    machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model },
    durationMs,
    database: values.pg ? 'postgres' : 'sqlite',
    results: rows,
    services: memory,
    notes: Object.fromEntries(chosen.map((s) => [s.name, s.note])),
  };
  await writeFile(file, JSON.stringify(run, null, 2));
  process.stdout.write(`results: ${file}\n`);
  if (rows.some((row) => row.errors > 0)) process.exit(1);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
