/**
 * The product as a user runs it: Identity and the KMS as separate processes (`apps/* /dist/main.js`,
 * built by `pnpm test`), each with its own database, on TLS 1.3 from one generated CA. The KMS knows
 * Identity only by its issuer URL. Identity's access log is kept, so tests can count requests on its side.
 * Stopping a stack fails if either audit chain is broken or holds a secret, token or plaintext, if any
 * process's log or any column of either product's database (every tenant's too) holds one, or if any
 * answer given through `stack.fetch` holds a secret of the servers (keys, admin token, passwords, client
 * secrets).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { openDatabase } from '@cryptoutil/infra';
import { RoundRobinProxy, storedSecretFindings, testPorts } from '@cryptoutil/infra/testing';
import { loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';
import { auditLeaks, deploymentSecrets, logLeaks, type ScannedRecord } from './audit-scan.js';

const ROOT = resolve(import.meta.dirname ?? '.', '../..');
const KMS_SCOPES = [
  'kms:admin',
  'kms:read',
  'kms:write',
  'kms:encrypt',
  'kms:decrypt',
  'kms:rewrap',
  'kms:sign',
  'kms:verify',
  'kms:generate',
];
export const KMS_SERVICE_SECRET_FILE = join(ROOT, 'deployments/identity/secrets/kms-service.secret');
export const KMS_CONSOLE_SECRET_FILE = join(ROOT, 'deployments/identity/secrets/kms-console.secret');

export interface Service {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  lines: () => Record<string, unknown>[];
  /** Everything the process wrote to stdout and stderr. */
  output: () => string;
}

/** One process of a product, which a test may kill and start again on the same ports and data. */
export interface Replica extends Service {
  /** Starts the process again (after it exited) and resolves once it is ready; logs accumulate. */
  restart(): Promise<void>;
}

export interface Stack {
  dir: string;
  /** Identity as clients see it (with replicas: the proxy's URL, the first replica's admin listener). */
  identity: Service;
  kms: Service;
  /** Every process of each product (one each unless `replicas` was given). */
  replicas: { identity: Replica[]; kms: Replica[] };
  /** The round-robin proxies in front of the replicas (empty with one replica each). */
  proxies: RoundRobinProxy[];
  /** Trusts the CA and presents an administrator client certificate (both admin listeners accept it). */
  agent: Agent;
  fetch: typeof fetch;
  adminToken: string;
  rootCaPem: string;
  /** SPKI SHA-256 pins of the two server leaves (for a browser that must trust exactly them). */
  leafPins: string[];
  /**
   * Secrets, tokens and plaintexts the tests used: when the stack stops, neither product's audit log may
   * contain any of them (nor the stack's own keys and the demo secrets, which are always checked).
   */
  secrets: Set<string>;
  /** Verifies both audit chains and scans them (see audit-scan); rejects with the findings. */
  stop(): Promise<void>;
}

export interface StackDatabase {
  /** `sqlite` or a PostgreSQL URL; each service gets its own file or schema. */
  url: string;
  schemaPrefix?: string;
}

function launch(
  name: string,
  configPath: string,
  extra: string[],
  env: NodeJS.ProcessEnv = {},
): Service & { ready: (agent: Agent) => Promise<void> } {
  const child = spawn(process.execPath, [join(ROOT, `apps/${name}/dist/main.js`), '--config', configPath, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const service = {
    child,
    publicUrl: '',
    adminUrl: '',
    output: () => output,
    lines: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async ready(agent: Agent) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`${name} exited: ${output}`);
        try {
          const res = await undiciFetch(`${service.adminUrl}/admin/v1/readyz`, {
            dispatcher: agent,
            signal: AbortSignal.timeout(5000),
          });
          // Only once this process logged that both its listeners are bound: a ready answer on its admin
          // port from any other process (one that held the port first) must not pass for it.
          if (res.status === 200 && output.includes(`"msg":"${name} started"`)) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`${name} not ready: ${output}`);
        await new Promise((done) => setTimeout(done, 200));
      }
    },
  };
  return service;
}

export async function startStack(
  database: StackDatabase,
  options: {
    kmsFlags?: readonly string[];
    env?: NodeJS.ProcessEnv;
    /**
     * Processes per product (or per product each) behind a round-robin TCP proxy (PostgreSQL only; default
     * 1, no proxy).
     */
    replicas?: number | { identity: number; kms: number };
    /**
     * The issuer's host (default 127.0.0.1). Passkeys need a host name: WebAuthn refuses an IP address as
     * relying-party id, so the passkey test runs Identity as https://localhost:<port>.
     */
    issuerHost?: 'localhost' | '127.0.0.1';
  } = {},
): Promise<Stack> {
  const counts =
    typeof options.replicas === 'object'
      ? options.replicas
      : { identity: options.replicas ?? 1, kms: options.replicas ?? 1 };
  if ((counts.identity > 1 || counts.kms > 1) && database.url === 'sqlite') throw new Error('replicas need PostgreSQL');
  const dir = await mkdtemp(join(tmpdir(), 'e2e-'));
  const tlsDir = join(dir, 'tls');
  const ca = await loadOrCreateCa(tlsDir);
  const admin = await loadOrIssueLeaf(tlsDir, 'e2e-admin', ca, { commonName: 'identity-admin', usage: 'client' });
  // Every port of the stack at once: distinct, and none another test's process may be given meanwhile.
  const free = await testPorts(2 + 2 * (counts.identity + counts.kms));
  const take = () => free.shift() as number;
  const [identityPort, kmsPort] = [take(), take()];
  /** Each replica's own public and admin ports; with one replica the public port is the stack's. */
  const ports = (publicPort: number, replicas: number) =>
    Array.from({ length: replicas }, () => ({ public: replicas === 1 ? publicPort : take(), admin: take() }));
  const identityPorts = ports(identityPort, counts.identity);
  const kmsPorts = ports(kmsPort, counts.kms);
  const issuer = `https://${options.issuerHost ?? '127.0.0.1'}:${identityPort}`;
  const kmsUrl = `https://127.0.0.1:${kmsPort}`;
  const secret = async (name: string, value: string) => {
    const path = join(dir, `${name}.secret`);
    await writeFile(path, value, { mode: 0o600 });
    return `file://${path}`;
  };
  const adminToken = `e2e-admin-token-${Math.random().toString(36).slice(2)}-0123456789abcdef`;
  const databaseLines = (name: string) =>
    database.url === 'sqlite'
      ? ['database:', `  url: sqlite:${join(dir, `${name}.sqlite`)}`]
      : ['database:', `  url: ${database.url}`, `  schema: ${database.schemaPrefix ?? 'e2e'}_${name}`];

  const cookieKey = await secret('cookie', 'e2e-cookie-key-0123456789abcdef0123456789');
  const atRestKey = await secret('at-rest', 'e2e-at-rest-key-0123456789abcdef0123456789');
  const adminTokenFile = await secret('admin-token', adminToken);
  const unsealSecret = await secret('unseal', 'e2e-unseal-secret-0123456789abcdef0123456789');
  type Ports = { public: number; admin: number };
  const identityConfig = async (index: number, own: Ports) => {
    const path = join(dir, `identity-${index}.yml`);
    await writeFile(
      path,
      [
        'server:',
        `  public_port: ${own.public}`,
        `  admin_port: ${own.admin}`,
        `  issuer: ${issuer}`,
        ...databaseLines('identity'),
        'tls:',
        `  dir: ${tlsDir}`,
        'secrets:',
        '  cookie_keys:',
        `    - ${cookieKey}`,
        `  signing_key_encryption: ${atRestKey}`,
        `  admin_token: ${adminTokenFile}`,
        'resources:',
        `  - uri: ${kmsUrl}`,
        `    scopes: [${KMS_SCOPES.join(', ')}]`,
        '',
      ].join('\n'),
    );
    return path;
  };
  const kmsConfig = async (index: number, own: Ports) => {
    const path = join(dir, `kms-${index}.yml`);
    await writeFile(
      path,
      [
        'server:',
        `  public_port: ${own.public}`,
        `  admin_port: ${own.admin}`,
        // What callers use (the proxy's URL with replicas): DPoP proofs name it.
        `  public_url: ${kmsUrl}`,
        ...databaseLines('kms'),
        'tls:',
        `  dir: ${tlsDir}`,
        'unseal:',
        '  mode: simple',
        '  secrets:',
        `    - ${unsealSecret}`,
        'auth:',
        '  identity:',
        `    issuer: ${issuer}`,
        `    audience: ${kmsUrl}`,
        '    client_id: kms-service',
        `    client_secret: file://${KMS_SERVICE_SECRET_FILE}`,
        '    clock_tolerance_seconds: 0',
        '    jwks_cooldown_seconds: 1',
        // The console's sign-in through Identity (the demo client kms-console, moved to this stack's URL).
        '    browser_login:',
        '      client_id: kms-console',
        `      client_secret: file://${KMS_CONSOLE_SECRET_FILE}`,
        '',
      ].join('\n'),
    );
    return path;
  };

  const agent = new Agent({ connect: { ca: ca.rootPem, cert: admin.chainPem, key: admin.keyPem } });
  // One after the other: the first of each product seeds the demo data and makes the key hierarchy.
  // A product's proxy starts once its replicas are up (the KMS is only ready once Identity answers).
  const proxies: RoundRobinProxy[] = [];
  const behindProxy = async (group: Service[], port: number) => {
    if (group.length === 1) return;
    const proxy = new RoundRobinProxy(
      group.map((replica) => ({ host: '127.0.0.1', port: Number(new URL(replica.publicUrl).port) })),
    );
    await proxy.start(port);
    proxies.push(proxy);
  };
  /** Launches one process and waits until it is ready; `restart` launches it again the same way. */
  const start = async (name: 'identity' | 'kms', configPath: string, extra: string[], own: Ports) => {
    const launched = launch(name, configPath, extra, options.env);
    const replica: Replica = {
      child: launched.child,
      publicUrl: `https://127.0.0.1:${own.public}`,
      adminUrl: `https://127.0.0.1:${own.admin}`,
      output: launched.output,
      lines: launched.lines,
      async restart() {
        const earlier = replica.output;
        const again = launch(name, configPath, extra, options.env);
        again.publicUrl = replica.publicUrl;
        again.adminUrl = replica.adminUrl;
        replica.child = again.child;
        replica.output = () => `${earlier()}\n${again.output()}`;
        replica.lines = () =>
          replica
            .output()
            .split('\n')
            .filter((line) => line.startsWith('{'))
            .map((line) => JSON.parse(line) as Record<string, unknown>);
        await again.ready(agent);
      },
    };
    launched.publicUrl = replica.publicUrl;
    launched.adminUrl = replica.adminUrl;
    await launched.ready(agent);
    return replica;
  };
  const identities: Replica[] = [];
  for (const [index, own] of identityPorts.entries()) {
    identities.push(await start('identity', await identityConfig(index, own), ['--demo'], own));
  }
  await behindProxy(identities, identityPort);
  // The demo seed registers kms-console for the KMS at its default port; point it at this stack's KMS.
  const moved = await undiciFetch(`${identities[0]?.adminUrl}/admin/v1/clients/kms-console`, {
    method: 'PATCH',
    dispatcher: agent,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      redirect_uris: [`${kmsUrl}/browser/api/v1/identity/callback`],
      backchannel_logout_uri: `${kmsUrl}/browser/api/v1/identity/backchannel-logout`,
    }),
  });
  if (moved.status !== 200) throw new Error(`kms-console not updated: ${moved.status} ${await moved.text()}`);
  const kmses: Replica[] = [];
  for (const [index, own] of kmsPorts.entries()) {
    kmses.push(await start('kms', await kmsConfig(index, own), [...(options.kmsFlags ?? [])], own));
  }
  await behindProxy(kmses, kmsPort);
  /** The product as clients see it: the stack's URL, the first replica's admin listener, every replica's log. */
  const facade = ([first, ...others]: Service[], publicUrl: string): Service => {
    if (!first) throw new Error('no replica started');
    return {
      // The first replica's current process (a test may have restarted it).
      get child() {
        return first.child;
      },
      publicUrl,
      adminUrl: first.adminUrl,
      lines: () => [first, ...others].flatMap((replica) => replica.lines()),
      output: () => [first, ...others].map((replica) => replica.output()).join('\n'),
    };
  };
  const identity = facade(identities, issuer);
  const kms = facade(kmses, kmsUrl);

  const { createHash, X509Certificate } = await import('node:crypto');
  const pin = async (name: string) => {
    const pem = await readFile(join(tlsDir, name, 'cert.pem'), 'utf8');
    const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    return createHash('sha256').update(spki).digest('base64');
  };
  const secrets = new Set([
    adminToken,
    'e2e-cookie-key-0123456789abcdef0123456789',
    'e2e-at-rest-key-0123456789abcdef0123456789',
    'e2e-unseal-secret-0123456789abcdef0123456789',
    ...(await deploymentSecrets(ROOT)),
  ]);
  /** What the server keeps to itself: never in an answer (tokens and plaintexts the tests add may be). */
  const serverSecrets = [...secrets];
  /** Every answer given through `stack.fetch`, headers and body, scanned for server secrets at the end. */
  const answers: Promise<string>[] = [];
  const scannedFetch = async (url: string, init?: RequestInit) => {
    const res = await undiciFetch(url, { ...(init as object), dispatcher: agent });
    const head = [...res.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
    answers.push(
      res
        .clone()
        .text()
        .then((body) => `${head}\n${body}`)
        .catch(() => head),
    );
    return res;
  };
  const auditProblems = async (): Promise<string[]> => {
    const problems: string[] = [];
    for (const [product, service] of [
      ['identity', identity],
      ['kms', kms],
    ] as const) {
      if (service.child.exitCode !== null) continue; // a test stopped it on purpose
      const get = async (path: string) => {
        const res = await undiciFetch(`${service.adminUrl}${path}`, {
          dispatcher: agent,
          headers: { authorization: `Bearer ${adminToken}` },
        });
        if (res.status !== 200) throw new Error(`${product} ${path}: ${res.status} ${await res.text()}`);
        return res.json();
      };
      const verified = (await get('/admin/v1/audit/verify')) as { ok: boolean; reason?: string };
      if (!verified.ok) problems.push(`${product} audit chain broken: ${verified.reason}`);
      const records: ScannedRecord[] = [];
      for (let page = 0; ; page++) {
        const { items } = (await get(`/admin/v1/audit?size=1000&page=${page}`)) as { items: ScannedRecord[] };
        records.push(...items);
        if (items.length < 1000) break;
      }
      problems.push(...auditLeaks(product, records, secrets));
    }
    return problems;
  };
  const prefix = database.schemaPrefix ?? 'e2e';
  /** PostgreSQL: both products' schemas and every KMS tenant's (named as the KMS names them). */
  const postgresSchemas = async (db: Awaited<ReturnType<typeof openDatabase>>) => {
    const tenants = await db
      .all<{ id: string }>(sql.raw(`SELECT id FROM "${prefix}_kms".kms_tenants`))
      .catch(() => [] as { id: string }[]);
    const tenantSchemas = tenants.map(({ id }) => `tenant_${id.toLowerCase().replaceAll('-', '_')}`);
    return [`${prefix}_identity`, `${prefix}_kms`, ...tenantSchemas];
  };
  /** Known secrets in any process's log or any stored column (after the processes stopped). */
  const storedProblems = async (): Promise<string[]> => {
    const problems = [...identities, ...kmses].flatMap((service, index) =>
      logLeaks(`log of process ${index}`, service.output(), secrets),
    );
    problems.push(...logLeaks('an answer', (await Promise.all(answers)).join('\n'), serverSecrets));
    if (database.url === 'sqlite') {
      const files = (await readdir(dir, { recursive: true })).filter((file) => file.endsWith('.sqlite'));
      for (const file of files) {
        const db = await openDatabase({ url: `sqlite:${join(dir, file)}` });
        problems.push(...(await storedSecretFindings(db, secrets)).map((finding) => `${file}: ${finding}`));
        await db.close();
      }
    } else {
      const db = await openDatabase({ url: database.url });
      problems.push(...(await storedSecretFindings(db, secrets, await postgresSchemas(db))));
      await db.close();
    }
    return problems;
  };
  const stop = async (service: Service) => {
    if (service.child.exitCode !== null) return;
    const exited = new Promise((done) => service.child.once('exit', done));
    service.child.kill('SIGTERM');
    await exited;
  };
  return {
    dir,
    identity,
    kms,
    agent,
    fetch: scannedFetch as unknown as typeof fetch,
    adminToken,
    rootCaPem: ca.rootPem,
    leafPins: [await pin('identity'), await pin('kms')],
    secrets,
    replicas: { identity: identities, kms: kmses },
    proxies,
    async stop() {
      const problems = await auditProblems().catch((error: unknown) => [`reading the audit logs failed: ${error}`]);
      await Promise.all([...kmses, ...identities].map(stop));
      await Promise.all(proxies.map((proxy) => proxy.stop()));
      await agent.close();
      problems.push(...(await storedProblems().catch((error: unknown) => [`scanning logs and data failed: ${error}`])));
      if (database.url !== 'sqlite') {
        const db = await openDatabase({ url: database.url });
        for (const schema of await postgresSchemas(db)) await db.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await db.close();
      }
      if (problems.length > 0) throw new Error(`secret hygiene problems:\n${problems.join('\n')}`);
    },
  };
}

/** A client-credentials token for `kms-service` (the demo secret) with `scope`, from the stack's Identity. */
export async function kmsServiceToken(stack: Stack, scope: string): Promise<string> {
  const secret = (await readFile(KMS_SERVICE_SECRET_FILE, 'utf8')).trim();
  const service = await client.discovery(
    new URL(stack.identity.publicUrl),
    'kms-service',
    undefined,
    client.ClientSecretBasic(secret),
    { [client.customFetch]: stack.fetch as client.CustomFetch },
  );
  const token = (await client.clientCredentialsGrant(service, { scope })).access_token;
  stack.secrets.add(token);
  return token;
}
