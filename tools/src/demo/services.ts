/**
 * Starting the products for a demo: each app as its own process (`apps/<app>/dist/main.js --demo`), its
 * readiness awaited on the admin listener (mTLS with a client certificate from the same CA), and the link
 * between them (Identity's demo users and `kms-service` act for the KMS tenant `demo-tenant-a`). Used by
 * `pnpm demo` (fixed ports, `./.data/`) and by the demo CLI (free ports, a throw-away directory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { freePorts } from '@cryptoutil/infra';
import { loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Demo-only: the seeded `kms-service` client's secret (also a docker secret). */
export const KMS_SERVICE_SECRET = join(ROOT, 'deployments/identity/secrets/kms-service.secret');
/** Demo-only: the seeded `kms-console` client's secret (the KMS console's sign-in through Identity). */
export const KMS_CONSOLE_SECRET = join(ROOT, 'deployments/identity/secrets/kms-console.secret');
/** The single source of the KMS demo data; the KMS seeds it itself (`--demo`). */
export const KMS_DEMO_SEED = join(ROOT, 'deployments/kms/config/demo-seed.yml');
export const DEMO_TENANT = 'demo-tenant-a';

export type AppName = 'identity' | 'kms';

export interface Endpoints {
  publicUrl: string;
  /** Absent when attached to a running service (its admin listener needs a client certificate). */
  adminUrl?: string;
}

/** Starts an app; its stderr goes to `stderr` ('inherit' to pass it through). */
export function launchApp(
  name: AppName,
  configPath: string,
  flags: readonly string[],
  stderr: 'inherit' | 'pipe' = 'inherit',
): ChildProcess {
  return spawn(process.execPath, [join(ROOT, `apps/${name}/dist/main.js`), '--config', configPath, ...flags], {
    stdio: ['ignore', 'ignore', stderr],
  });
}

/** Polls `url` (a readiness or discovery endpoint) until it answers 200, the process exits or time runs out. */
export async function waitReady(
  name: string,
  url: string,
  dispatcher: Agent,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${name} exited during startup`);
    try {
      const res = await request(url, { dispatcher });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} was not ready within ${timeoutMs / 1000} s (${url})`);
    await new Promise((done) => setTimeout(done, 250));
  }
}

async function adminCall<T>(dispatcher: Agent, url: string, method: 'GET' | 'PATCH' = 'GET', body?: object) {
  const res = await request(url, {
    method,
    dispatcher,
    ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  if (res.statusCode >= 300) throw new Error(`${method} ${url} answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as T;
}

/**
 * The KMS seeded its demo tenants (fresh UUIDv4s on a first or reset start); Identity's demo users and the
 * kms-service client act for `demo-tenant-a`, so their tokens reach its keys (the relying-party page too).
 */
export async function linkDemoTenant(
  dispatcher: Agent,
  kmsAdminUrl: string,
  identityAdminUrl: string,
): Promise<string> {
  const tenants = await adminCall<{ items: { tenant_id: string; name: string }[] }>(
    dispatcher,
    `${kmsAdminUrl}/admin/v1/tenants`,
  );
  const tenant = tenants.items.find((item) => item.name === DEMO_TENANT);
  if (!tenant) throw new Error(`the KMS has no ${DEMO_TENANT} tenant: was it started with --demo?`);
  const admin = `${identityAdminUrl}/admin/v1`;
  const users = await adminCall<{ items: { id: string; username: string }[] }>(dispatcher, `${admin}/users?size=100`);
  for (const user of users.items.filter((item) => item.username.startsWith('demo-'))) {
    await adminCall(dispatcher, `${admin}/users/${user.id}`, 'PATCH', { tenant_id: tenant.tenant_id });
  }
  await adminCall(dispatcher, `${admin}/clients/kms-service`, 'PATCH', { tenant_id: tenant.tenant_id });
  return tenant.tenant_id;
}

export interface DemoServices {
  kms?: Endpoints;
  identity?: Endpoints;
  /** Trusts the CA (and presents the demo client certificate when the services were started here). */
  dispatcher: Agent;
  /** The root CA's PEM file, when the services were started here. */
  caFile?: string;
  /** Stops what was started here (nothing when attached). */
  stop(): Promise<void>;
  /** Stops one started app at once (tests use it to make a step fail). */
  kill(name: AppName): void;
}

/** Starts the requested apps on free ports with `--demo`, in a throw-away directory. */
export async function startDemoServices(
  apps: { kms: boolean; identity: boolean },
  timeoutMs: number,
): Promise<DemoServices> {
  const dir = await mkdtemp(join(tmpdir(), 'cryptoutil-demo-'));
  const tlsDir = join(dir, 'tls');
  const ca = await loadOrCreateCa(tlsDir);
  const client = await loadOrIssueLeaf(tlsDir, 'demo-client', ca, { commonName: 'demo-client', usage: 'client' });
  const dispatcher = new Agent({
    connect: { ca: ca.rootPem, cert: client.chainPem, key: client.keyPem, minVersion: 'TLSv1.3' },
  });
  const secret = async (name: string) => {
    const path = join(dir, `${name}.secret`);
    await writeFile(path, randomBytes(32).toString('hex'), { mode: 0o600 });
    return `file://${path}`;
  };
  const [ip, iap, kp, kap] = (await freePorts(4)) as [number, number, number, number];
  const identity = { publicUrl: `https://127.0.0.1:${ip}`, adminUrl: `https://127.0.0.1:${iap}` };
  const kms = { publicUrl: `https://127.0.0.1:${kp}`, adminUrl: `https://127.0.0.1:${kap}` };
  const common = (name: AppName, publicPort: number, adminPort: number) => [
    'server:',
    `  public_port: ${publicPort}`,
    `  admin_port: ${adminPort}`,
    'database:',
    `  url: sqlite:${join(dir, `${name}.sqlite`)}`,
    'tls:',
    `  dir: ${tlsDir}`,
  ];
  const children = new Map<AppName, ChildProcess>();
  /** Starts an app and keeps the end of its stderr for the error message if it does not come up. */
  const start = async (name: AppName, config: string, readyUrl: string) => {
    const child = launchApp(name, config, ['--demo'], 'pipe');
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-2000)));
    children.set(name, child);
    try {
      await waitReady(name, readyUrl, dispatcher, timeoutMs, child);
    } catch (error) {
      throw new Error(`${(error as Error).message}${errors ? `: ${errors.trim()}` : ''}`);
    }
  };
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGTERM');
        await exited;
      }),
    );
    await dispatcher.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (apps.identity) {
      const config = join(dir, 'identity.yml');
      await writeFile(
        config,
        [
          ...common('identity', ip, iap),
          'secrets:',
          '  cookie_keys:',
          `    - ${await secret('cookie-key')}`,
          `  signing_key_encryption: ${await secret('signing-key-encryption')}`,
          `  admin_token: ${await secret('admin-token')}`,
          'admin:',
          '  certificate_names: [demo-client]',
          'resources:',
          `  - uri: ${kms.publicUrl}`,
          '    scopes: [kms:admin, kms:write, kms:read, kms:encrypt, kms:decrypt, kms:rewrap, kms:sign, kms:verify, kms:generate]',
          '',
        ].join('\n'),
      );
      await start('identity', config, `${identity.adminUrl}/admin/v1/readyz`);
    }
    if (apps.kms) {
      const config = join(dir, 'kms.yml');
      await writeFile(
        config,
        [
          ...common('kms', kp, kap),
          'unseal:',
          '  mode: simple',
          '  secrets:',
          `    - ${await secret('unseal')}`,
          'auth:',
          ...(apps.identity
            ? [
                '  identity:',
                `    issuer: ${identity.publicUrl}`,
                '    client_id: kms-service',
                `    client_secret: file://${KMS_SERVICE_SECRET}`,
              ]
            : ['  methods: [basic]']),
          '',
        ].join('\n'),
      );
      await start('kms', config, `${kms.adminUrl}/admin/v1/readyz`);
    }
    if (apps.kms && apps.identity) await linkDemoTenant(dispatcher, kms.adminUrl, identity.adminUrl);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ...(apps.kms ? { kms } : {}),
    ...(apps.identity ? { identity } : {}),
    dispatcher,
    caFile: join(tlsDir, 'root-ca.pem'),
    stop,
    kill: (name) => children.get(name)?.kill('SIGKILL'),
  };
}

/** Uses services that already run (e.g. `pnpm demo`), trusting `caFile`. */
export async function attachDemoServices(
  urls: { kms?: string; identity?: string },
  caPem: string,
  timeoutMs: number,
): Promise<DemoServices> {
  const dispatcher = new Agent({ connect: { ca: caPem, minVersion: 'TLSv1.3' } });
  try {
    if (urls.identity) {
      await waitReady('identity', `${urls.identity}/.well-known/openid-configuration`, dispatcher, timeoutMs);
    }
    if (urls.kms) await waitReady('kms', `${urls.kms}/.well-known/openapi.json`, dispatcher, timeoutMs);
  } catch (error) {
    await dispatcher.close();
    throw error;
  }
  return {
    ...(urls.kms ? { kms: { publicUrl: urls.kms } } : {}),
    ...(urls.identity ? { identity: { publicUrl: urls.identity } } : {}),
    dispatcher,
    stop: () => dispatcher.close(),
    kill: () => undefined,
  };
}
