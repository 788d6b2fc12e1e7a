/**
 * The product as a user runs it: Identity and the KMS as separate processes (`apps/* /dist/main.js`,
 * built by `pnpm test`), each with its own database, on TLS 1.3 from one generated CA. The KMS knows
 * Identity only by its issuer URL. Identity's access log is kept, so tests can count requests on its side.
 * Stopping a stack fails if either audit chain is broken or holds a secret, token or plaintext.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { freePort, openDatabase } from '@cryptoutil/infra';
import { loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';
import { auditLeaks, deploymentSecrets, type ScannedRecord } from './audit-scan.js';

const ROOT = resolve(import.meta.dirname ?? '.', '../..');
const KMS_SCOPES = [
  'kms:admin',
  'kms:read',
  'kms:write',
  'kms:encrypt',
  'kms:decrypt',
  'kms:sign',
  'kms:verify',
  'kms:generate',
];
export const KMS_SERVICE_SECRET_FILE = join(ROOT, 'deployments/identity/secrets/kms-service.secret');

export interface Service {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  lines: () => Record<string, unknown>[];
}

export interface Stack {
  dir: string;
  identity: Service;
  kms: Service;
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
          const res = await undiciFetch(`${service.adminUrl}/admin/v1/readyz`, { dispatcher: agent });
          if (res.status === 200) return;
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
  options: { kmsFlags?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-'));
  const tlsDir = join(dir, 'tls');
  const ca = await loadOrCreateCa(tlsDir);
  const admin = await loadOrIssueLeaf(tlsDir, 'e2e-admin', ca, { commonName: 'identity-admin', usage: 'client' });
  const [identityPort, identityAdminPort, kmsPort, kmsAdminPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const issuer = `https://127.0.0.1:${identityPort}`;
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

  const identityConfig = join(dir, 'identity.yml');
  await writeFile(
    identityConfig,
    [
      'server:',
      `  public_port: ${identityPort}`,
      `  admin_port: ${identityAdminPort}`,
      ...databaseLines('identity'),
      'tls:',
      `  dir: ${tlsDir}`,
      'secrets:',
      '  cookie_keys:',
      `    - ${await secret('cookie', 'e2e-cookie-key-0123456789abcdef0123456789')}`,
      `  signing_key_encryption: ${await secret('at-rest', 'e2e-at-rest-key-0123456789abcdef0123456789')}`,
      `  admin_token: ${await secret('admin-token', adminToken)}`,
      'resources:',
      `  - uri: ${kmsUrl}`,
      `    scopes: [${KMS_SCOPES.join(', ')}]`,
      '',
    ].join('\n'),
  );
  const kmsConfig = join(dir, 'kms.yml');
  await writeFile(
    kmsConfig,
    [
      'server:',
      `  public_port: ${kmsPort}`,
      `  admin_port: ${kmsAdminPort}`,
      ...databaseLines('kms'),
      'tls:',
      `  dir: ${tlsDir}`,
      'unseal:',
      '  mode: simple',
      '  secrets:',
      `    - ${await secret('unseal', 'e2e-unseal-secret-0123456789abcdef0123456789')}`,
      'auth:',
      '  identity:',
      `    issuer: ${issuer}`,
      '    client_id: kms-service',
      `    client_secret: file://${KMS_SERVICE_SECRET_FILE}`,
      '    clock_tolerance_seconds: 0',
      '    jwks_cooldown_seconds: 1',
      '',
    ].join('\n'),
  );

  const agent = new Agent({ connect: { ca: ca.rootPem, cert: admin.chainPem, key: admin.keyPem } });
  const identity = launch('identity', identityConfig, ['--demo'], options.env);
  identity.publicUrl = issuer;
  identity.adminUrl = `https://127.0.0.1:${identityAdminPort}`;
  await identity.ready(agent);
  const kms = launch('kms', kmsConfig, [...(options.kmsFlags ?? [])], options.env);
  kms.publicUrl = kmsUrl;
  kms.adminUrl = `https://127.0.0.1:${kmsAdminPort}`;
  await kms.ready(agent);

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
    fetch: ((url: string, init?: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch,
    adminToken,
    rootCaPem: ca.rootPem,
    leafPins: [await pin('identity'), await pin('kms')],
    secrets,
    async stop() {
      const problems = await auditProblems().catch((error: unknown) => [`reading the audit logs failed: ${error}`]);
      await Promise.all([stop(kms), stop(identity)]);
      await agent.close();
      if (database.url !== 'sqlite') {
        const db = await openDatabase({ url: database.url });
        for (const name of ['identity', 'kms']) {
          await db.exec(`DROP SCHEMA IF EXISTS "${database.schemaPrefix ?? 'e2e'}_${name}" CASCADE`);
        }
        await db.close();
      }
      if (problems.length > 0) throw new Error(`audit log problems:\n${problems.join('\n')}`);
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
