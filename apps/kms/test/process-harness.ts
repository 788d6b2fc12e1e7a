/**
 * The KMS as real processes for tests (`node apps/kms/dist/main.js`, built by `pnpm test`): config files
 * with unseal secrets, start (resolves when the KMS logs its URLs), SIGTERM or SIGKILL, and calls over TLS
 * with a client certificate from the same CA.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { uuidv7 } from '@cryptoutil/infra';
import { loadOrCreateCa, loadOrIssueLeaf, type StoredCa } from '@cryptoutil/tls';

export const MAIN = resolve(import.meta.dirname ?? '.', '../dist/main.js');
export const SECRETS = [1, 2, 3, 4, 5].map((n) => `process-test-unseal-secret-${n}-of-5-abcdefghijklmnop`);

export interface Kms {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  output: () => string;
}

export let dir: string;
export let ca: StoredCa;
export let client: Agent;

export async function writeConfig(
  name: string,
  databaseUrl: string,
  secrets: readonly string[],
  schema?: string,
  extra: readonly string[] = [],
  databaseLines: readonly string[] = [],
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
    ...databaseLines,
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
export function startProcess(configPath: string, flags: readonly string[] = []): Promise<Kms> {
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

export async function stop(kms: Kms): Promise<void> {
  if (kms.child.exitCode !== null) return;
  const exited = new Promise((done) => kms.child.once('exit', done));
  kms.child.kill('SIGTERM');
  await exited;
}

/** Kills the process at once (no shutdown hook runs), as a crash or an OOM kill would. */
export async function crash(kms: Kms): Promise<void> {
  if (kms.child.exitCode !== null || kms.child.signalCode !== null) return;
  const exited = new Promise((done) => kms.child.once('exit', done));
  kms.child.kill('SIGKILL');
  await exited;
}

export async function call(
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

/** Call once before the tests (a beforeAll): a fresh directory, CA and client certificate. */
export async function setUpProcesses(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run pnpm build (pnpm test does)`);
  dir = await mkdtemp(join(tmpdir(), 'kms-process-'));
  ca = await loadOrCreateCa(join(dir, 'tls'));
  const leaf = await loadOrIssueLeaf(join(dir, 'tls'), 'test-client', ca, {
    commonName: 'test-client',
    usage: 'client',
  });
  client = new Agent({ connect: { ca: ca.rootPem, cert: leaf.chainPem, key: leaf.keyPem } });
}

export async function tearDownProcesses(): Promise<void> {
  await client.close();
}
