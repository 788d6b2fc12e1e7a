/** Identity as a real process (`node apps/identity/dist/main.js`, built by `pnpm test`): startup failures. */
import { expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const MAIN = resolve(import.meta.dirname ?? '.', '../dist/main.js');

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => done({ code, output }));
  });
}

it('exits 1 with one clear line naming the bad setting, and no stack trace', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'identity-process-'));
  const config = join(dir, 'bad.yml');
  await writeFile(config, 'secrets:\n  cookie_keys: [short]\n  signing_key_encryption: also-short\n');
  const { code, output } = await run(['--config', config]);
  expect(code).toBe(1);
  const line = output.split('\n').find((text) => text.startsWith('identity: cannot start:'));
  expect(line).toMatch(/secrets\.cookie_keys/);
  expect(output).not.toMatch(/\n\s+at /);
});

it('exits 1 when a secret file reference cannot be read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'identity-process-'));
  const config = join(dir, 'missing-secret.yml');
  await writeFile(
    config,
    `secrets:\n  cookie_keys: [file://${join(dir, 'absent.secret')}]\n  signing_key_encryption: file://${join(dir, 'absent.secret')}\n`,
  );
  const { code, output } = await run(['--config', config]);
  expect(code).toBe(1);
  expect(output).toMatch(/identity: cannot start: .*absent\.secret/);
});

it('serves one Identity from two workers on a SQLite file: a token from one introspects at the other', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'identity-workers-'));
  const config = join(dir, 'workers.yml');
  await writeFile(
    config,
    [
      'server: { public_port: 0, admin_port: 0 }',
      `database: { url: "sqlite:${join(dir, 'identity.sqlite')}" }`,
      `tls: { dir: "${join(dir, 'tls')}" }`,
      'secrets:',
      '  cookie_keys: [workers-cookie-key-0123456789abcdef0123456789]',
      '  signing_key_encryption: workers-at-rest-key-0123456789abcdef0123456789',
      'workers: 2',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [MAIN, '--config', config, '--demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const deadline = Date.now() + 30_000;
  while (!output.includes('"identity workers started"') && Date.now() < deadline && child.exitCode === null) {
    await new Promise((done) => setTimeout(done, 50));
  }
  expect(output).toContain('"identity workers started"');
  const issuer = output
    .split('\n')
    .filter((line) => line.includes('"identity started"'))
    .map((line) => (JSON.parse(line) as { issuer: string }).issuer)[0];
  const dispatcher = new Agent({ connect: { ca: await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8') } });
  const secret = (
    await readFile(
      resolve(import.meta.dirname ?? '.', '../../../deployments/identity/secrets/kms-service.secret'),
      'utf8',
    )
  ).trim();
  const form = {
    authorization: `Basic ${Buffer.from(`kms-service:${secret}`).toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
  };
  // Each request on a connection of its own, so the workers take turns.
  const post = async (path: string, body: string) => {
    const res = await request(`${issuer}${path}`, { method: 'POST', dispatcher, reset: true, headers: form, body });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  try {
    const tokens: string[] = [];
    for (let n = 0; n < 4; n++) {
      const issued = await post('/token', 'grant_type=client_credentials&scope=kms%3Aread');
      expect(issued.status).toBe(200);
      tokens.push(issued.body.access_token as string);
    }
    for (const token of tokens) {
      expect((await post('/token/introspection', `token=${token}`)).body).toMatchObject({ active: true });
    }
    const servedBy = new Set(
      output
        .split('\n')
        .filter((line) => line.includes('"msg":"request"') && line.includes('"path":"/token'))
        .map((line) => (JSON.parse(line) as { worker?: number }).worker),
    );
    expect([...servedBy].sort()).toEqual([1, 2]);
  } finally {
    await dispatcher.close();
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
});
