/** Identity as a real process (`node apps/identity/dist/main.js`, built by `pnpm test`): startup failures. */
import { expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
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
