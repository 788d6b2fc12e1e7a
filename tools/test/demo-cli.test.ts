/**
 * The demo CLI as users run it (`node tools/dist/demo/cli.js`, built by `pnpm test`): each command
 * against services it starts itself, exit codes, a KMS that dies in the middle of `demo all`, and the device
 * login (`--device`) completing when a person approves the printed code in a browser.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FormBrowser, formAction, formValue } from '@cryptoutil/infra';
import { fetchVia } from '../src/demo/http.js';
import { startDemoServices, type DemoServices } from '../src/demo/services.js';
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
    const device = await demo(['kms', '--device']);
    expect([device.code, device.stderr]).toEqual([2, expect.stringContaining('--device is for "identity" and "all"')]);
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

  /** A person at the verification page: enters the code, confirms, signs in as demo-user, allows. */
  async function approveInBrowser(running: DemoServices, verificationUri: string, userCode: string): Promise<string> {
    const issuer = running.identity!.publicUrl;
    const browser = new FormBrowser(fetchVia(running.dispatcher), issuer);
    let html = await (await browser.follow(verificationUri)).response.text();
    html = await (
      await browser.follow(formAction(html), { form: { xsrf: formValue(html, 'xsrf'), user_code: userCode } })
    ).response.text();
    const confirm = { xsrf: formValue(html, 'xsrf'), user_code: formValue(html, 'user_code'), confirm: 'yes' };
    html = await (await browser.follow(formAction(html), { form: confirm })).response.text();
    const login = { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' };
    html = await (await browser.follow(new URL(formAction(html), issuer).toString(), { form: login })).response.text();
    html = await (
      await browser.follow(new URL(formAction(html), issuer).toString(), { form: { csrf: formValue(html, 'csrf') } })
    ).response.text();
    return html;
  }

  it.each([
    ['identity', 'userinfo with the device access token — signed in as demo-user', 2],
    ['all', 'encrypt and decrypt as the person', 3],
  ])(
    '"%s --device" prints the URL and code, polls while pending, and uses the person\'s token once a browser approves',
    async (command, last, steps) => {
      const running = await startDemoServices({ kms: command === 'all', identity: true }, 30_000);
      try {
        let verificationUri = '';
        let userCode = '';
        let approved: Promise<string> | undefined;
        const attach =
          command === 'all'
            ? ['--attach-kms', running.kms!.publicUrl, '--attach-identity', running.identity!.publicUrl]
            : ['--attach', running.identity!.publicUrl];
        const run = await demo(
          [command, '--device', ...attach, '--ca', running.caFile!],
          // The person approves once the CLI shows it is waiting (so it polls while pending first).
          (line) => {
            verificationUri = /open (https:\/\/\S+\/device)$/.exec(line)?.[1] ?? verificationUri;
            userCode =
              /enter the code\s+([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})$/.exec(line)?.[1] ?? userCode;
            if (line.includes('waiting for approval') && !approved) {
              approved = approveInBrowser(running, verificationUri, userCode);
            }
          },
        );
        expect(await approved).toContain('Device connected');
        expect([run.code, run.stderr]).toEqual([0, '']);
        expect(run.stdout).toContain(`To sign in, open ${running.identity!.publicUrl}/device`);
        expect(run.stdout).toMatch(/… waiting for approval \(poll 1, next in 5 s, \d+:\d\d left\)/);
        // Polling at the advertised interval is never told to slow down.
        expect(run.stdout).not.toContain('slow');
        expect(run.stdout).toMatch(
          new RegExp(
            `✓ step 1/${steps} \\[identity\\] device login \\(demo-cli\\): approve in a browser — tokens for `,
          ),
        );
        expect(run.stdout).toContain(`step ${steps}/${steps}`);
        expect(run.stdout).toContain(last);
        expect(run.stdout).toContain(`All steps passed: ${steps} passed, 0 failed, 0 skipped of ${steps}`);
      } finally {
        await running.stop();
      }
    },
    120_000,
  );
});
