/**
 * The demo CLI as users run it (`node tools/dist/demo/cli.js`, built by `pnpm test`): each command
 * against services it starts itself, exit codes, and a KMS that dies in the middle of `demo all`.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startDemoServices } from '../src/demo/services.js';
import type { RunSummary } from '../src/demo/steps.js';

const CLI = resolve(import.meta.dirname ?? '.', '../dist/demo/cli.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onLine` sees each stdout line as it comes. */
function demo(args: string[], onLine: (line: string) => void = () => undefined): Promise<Run> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build (pnpm test does)`);
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const before = stdout.split('\n').length - 1;
    stdout += chunk.toString();
    for (const line of stdout.split('\n').slice(before, -1)) onLine(line);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, stdout, stderr })));
}

describe('the demo CLI', () => {
  it.each([
    ['kms', 9],
    ['identity', 8],
    ['all', 22],
  ])(
    'runs "demo %s" against freshly started services: every step passes, exit 0',
    async (command, steps) => {
      const run = await demo([command, '-o', 'json']);
      expect([run.code, run.stderr]).toEqual([0, '']);
      const summary = JSON.parse(run.stdout) as RunSummary;
      expect(summary).toMatchObject({
        success: true,
        total_steps: steps,
        passed_steps: steps,
        failed_steps: 0,
        skipped_steps: 0,
        errors: [],
      });
      expect(summary.duration_ms).toBeGreaterThan(0);
    },
    120_000,
  );

  it('exits 2 with the usage for an unknown command or option, and for services it cannot reach', async () => {
    const unknown = await demo(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"[\s\S]*usage:/);
    expect((await demo(['kms', '--output', 'xml'])).code).toBe(2);
    const help = await demo(['help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('--attach-kms <url>')]);
    // As `pnpm demo:kms -- --attach …` runs it: pnpm passes the `--` on, the options after it still count.
    const nowhere = await demo(['kms', '--', '-o', 'json', '--attach', 'https://127.0.0.1:9', '--health-timeout', '1']);
    expect(nowhere.code).toBe(2);
    expect(JSON.parse(nowhere.stdout)).toMatchObject({ success: false, total_steps: 0, errors: [{ phase: 'setup' }] });
  }, 60_000);

  it('exits 1 naming the failing step when the KMS stops in the middle of "demo all"', async () => {
    const running = await startDemoServices({ kms: true, identity: true }, 30_000);
    try {
      const run = await demo(
        [
          'all',
          '--attach-kms',
          running.kms!.publicUrl,
          '--attach-identity',
          running.identity!.publicUrl,
          '--ca',
          running.caFile!,
        ],
        // The last KMS-only step is done: stop the KMS before the integration steps need it.
        (line) => line.includes('step 9/21') && running.kill('kms'),
      );
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/✓ step 17\/21 \[identity\] revoke/);
      expect(run.stdout).toMatch(/✗ step 19\/21 \[integration\] the KMS accepts it/);
      expect(run.stdout).toMatch(/Some steps did not pass: 18 passed, 3 failed, 0 skipped of 21/);
    } finally {
      await running.stop();
    }
  }, 120_000);
});
