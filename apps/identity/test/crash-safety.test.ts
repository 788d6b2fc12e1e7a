/**
 * Crash safety (issue #10): Identity is killed with SIGKILL at a random moment, again and again:
 * - while it rotates signing keys and issues tokens: after each restart the JWKS holds a current key for
 *   each algorithm and every token issued before the crash still verifies against it;
 * - while it rotates a refresh token (under load): an answered successor survives the crash and the old
 *   token then counts as reuse (refused, and the whole grant revoked, the successor with it); an unanswered
 *   rotation either never happened (the old token still works) or consumed the old token. No grant is ever
 *   usable by both the old and the new token. (Concurrent presentations: refresh-race.test.ts.)
 * `CRASH_ITERATIONS` sets the rounds (CI: 3).
 */
import { expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import * as client from 'openid-client';
import { FormBrowser, formAction, formValue } from '@cryptoutil/infra';
import { testPorts } from '@cryptoutil/infra/testing';
import { ADMIN_TOKEN, KMS_SERVICE_SECRET, SPA_REDIRECT, spaTokenRequest } from './harness.js';

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

/** A configuration on SQLite with one public port for every restart, so the issuer stays the same. */
async function crashConfig(): Promise<{ config: string; base: string; caFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'identity-crash-'));
  const secret = async (name: string, value: string) => {
    await writeFile(join(dir, name), value, { mode: 0o600 });
    return `file://${join(dir, name)}`;
  };
  const config = join(dir, 'identity.yml');
  const [port] = await testPorts(1);
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
  return { config, base: `https://127.0.0.1:${port}`, caFile: join(dir, 'tls', 'root-ca.pem') };
}

/** A `client_credentials` request for kms-service (each one is a PBKDF2 run on the server: load). */
async function machineToken(
  base: string,
  call: (url: string, init?: Parameters<typeof undiciFetch>[1]) => ReturnType<typeof undiciFetch>,
): Promise<{ status: number; body: string }> {
  const res = await call(`${base}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=kms:read',
  });
  return { status: res.status, body: await res.text() };
}

it(
  `survives ${ITERATIONS} SIGKILLs in the middle of signing-key rotations and token issuance`,
  async () => {
    const { config, base, caFile } = await crashConfig();
    let identity = await start(config);
    const agent = new Agent({ connect: { ca: await readFile(caFile, 'utf8') } });
    const call = (url: string, init: Parameters<typeof undiciFetch>[1] = {}) =>
      undiciFetch(url, { ...init, dispatcher: agent, signal: AbortSignal.timeout(10_000) });
    const issued: string[] = [];
    const issueToken = () =>
      machineToken(base, call).then((answer) => {
        if (answer.status === 200) issued.push((JSON.parse(answer.body) as { access_token: string }).access_token);
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

it(
  `never leaves a grant usable by both an old and a new refresh token across ${ITERATIONS} SIGKILLs`,
  async () => {
    const { config, base, caFile } = await crashConfig();
    let identity = await start(config);
    const agent = new Agent({ connect: { ca: await readFile(caFile, 'utf8') } });
    const call = ((url: string, init: Parameters<typeof undiciFetch>[1] = {}) =>
      undiciFetch(url, { ...init, dispatcher: agent, signal: AbortSignal.timeout(10_000) })) as typeof undiciFetch;
    const refresh = (token: string) =>
      spaTokenRequest(call as unknown as typeof fetch, base, { grant_type: 'refresh_token', refresh_token: token });
    /** A fresh grant for demo-user: sign in through the form, exchange the code (PKCE). */
    const signIn = async (): Promise<string> => {
      const spa = await client.discovery(new URL(base), 'demo-spa', undefined, client.None(), {
        [client.customFetch]: call as unknown as client.CustomFetch,
      });
      const verifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(spa, {
        redirect_uri: SPA_REDIRECT,
        scope: 'openid profile offline_access kms:encrypt',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const browser = new FormBrowser(call as unknown as typeof fetch, base);
      const page = await browser.follow(url.toString());
      const html = await page.response.text();
      const done = await browser.follow(new URL(formAction(html), base).toString(), {
        form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
      });
      const tokens = await client.authorizationCodeGrant(spa, new URL(done.url), { pkceCodeVerifier: verifier });
      return tokens.refresh_token!;
    };

    const outcomes = { answered: 0, unanswered_kept: 0, unanswered_consumed: 0, cut_off: 0 };
    try {
      for (let round = 0; round < ITERATIONS; round++) {
        const old = await signIn();
        const running = identity;
        // Two PBKDF2 runs keep the process busy and leave libuv threads for the rotation's own crypto.
        const load = Array.from({ length: 2 }, () => machineToken(base, call).catch(() => undefined));
        const racing = [refresh(old)];
        // Kill moments spread over the rounds: before, during and after the rotation commits.
        await new Promise((done) => setTimeout(done, ((round + Math.random()) / ITERATIONS) * 200));
        await kill(running);
        await Promise.allSettled(load);
        const settled = await Promise.allSettled(racing);
        outcomes.cut_off += settled.filter((result) => result.status === 'rejected').length;
        const successors = settled.flatMap((result) =>
          result.status === 'fulfilled' && result.value.status === 200 ? [result.value.body.refresh_token!] : [],
        );
        expect(successors.length).toBeLessThanOrEqual(1);

        identity = await start(config);
        const [successor] = successors;
        if (successor) {
          outcomes.answered += 1;
          // What was answered survived the crash, and the old token is now reuse: refused, grant revoked.
          const next = await refresh(successor);
          expect(next.status).toBe(200);
          expect((await refresh(old)).body.error).toBe('invalid_grant');
          expect((await refresh(next.body.refresh_token!)).body.error).toBe('invalid_grant');
        } else {
          // Nobody heard of a successor: the old token either still works (the rotation did not commit) or
          // was consumed by a rotation whose answer the crash swallowed; never anything in between.
          const retry = await refresh(old);
          if (retry.status === 200) {
            outcomes.unanswered_kept += 1;
            expect((await refresh(retry.body.refresh_token!)).status).toBe(200);
          } else {
            outcomes.unanswered_consumed += 1;
            expect(retry.body.error).toBe('invalid_grant');
          }
        }
      }
      console.info(`refresh rotation crash outcomes: ${JSON.stringify(outcomes)}`);
      expect(outcomes.answered + outcomes.unanswered_kept + outcomes.unanswered_consumed).toBe(ITERATIONS);
    } finally {
      await kill(identity);
      await agent.close();
    }
  },
  60_000 + ITERATIONS * 20_000,
);
