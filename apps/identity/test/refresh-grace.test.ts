/**
 * Refresh rotation without races across instances (identity.md "Refresh rotation without races"): two
 * Identity processes' servers on one database (PostgreSQL, and one SQLite file), twenty concurrent
 * refreshes with one refresh token, alternating between them.
 * - No grace window (default): exactly one success, nineteen `invalid_grant`, the grant revoked.
 * - A 2 s grace window: all twenty get the same successor (each with its own access token) and the grant
 *   stays usable; the successor is stored only sealed, and erased when the window ends; after the window a
 *   reuse revokes the grant.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { createLogger } from '@cryptoutil/infra';
import { describeEachDatabase, type DatabaseTestContext } from '@cryptoutil/infra/testing';
import { identityConfigSchema } from '../src/config.js';
import { startIdentity, type RunningIdentity } from '../src/server.js';
import { Browser, SEED, SPA_REDIRECT, formAction, formValue, spaTokenRequest } from './harness.js';

interface Pair {
  one: RunningIdentity;
  two: RunningIdentity;
  fetch: typeof fetch;
  agent: Agent;
}

async function startPair(db: DatabaseTestContext, graceSeconds: number): Promise<Pair> {
  await db.open();
  const dir = await mkdtemp(join(tmpdir(), 'identity-grace-'));
  // One SQLite file (not memory) so that both instances share it.
  const database =
    db.dialect === 'sqlite' ? { url: `sqlite:${join(dir, 'identity.sqlite')}` } : { url: db.url(), schema: db.schema };
  const start = (issuer?: string) =>
    startIdentity({
      config: identityConfigSchema.parse({
        server: { public_port: 0, admin_port: 0, ...(issuer ? { issuer } : {}) },
        database,
        tls: { dir: join(dir, 'tls') },
        secrets: {
          cookie_keys: ['shared-cookie-key-0123456789abcdef0123'],
          signing_key_encryption: 'shared-at-rest-key-0123456789abcdef01',
        },
        tokens: { refresh_reuse_grace_seconds: graceSeconds },
        rate_limits: { token_per_client: null, token_per_ip: null },
        log: { level: 'error', access: false },
      }),
      logger: createLogger({ service: 'identity', silent: true }),
      version: 'test',
      dev: true,
      demoSeed: { path: SEED, reset: false },
    });
  const one = await start();
  const two = await start(one.issuer);
  const agent = new Agent({ connect: { ca: one.rootCaPem } });
  const fetcher = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
  return { one, two, fetch: fetcher, agent };
}

async function closePair(pair: Pair | undefined): Promise<void> {
  if (!pair) return;
  await pair.two.close();
  await pair.one.close();
  await pair.agent.close();
}

/** A refresh token of demo-spa for demo-user, signed in through the login form of instance one. */
async function refreshTokenFor(pair: Pair): Promise<string> {
  const spa = await client.discovery(new URL(pair.one.issuer), 'demo-spa', undefined, client.None(), {
    [client.customFetch]: pair.fetch as client.CustomFetch,
  });
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(spa, {
    redirect_uri: SPA_REDIRECT,
    scope: 'openid offline_access kms:encrypt',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const browser = new Browser(pair.fetch, pair.one.issuer);
  const page = await browser.follow(url.toString());
  const html = await page.response.text();
  const done = await browser.follow(new URL(formAction(html), pair.one.issuer).toString(), {
    form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
  });
  const tokens = await client.authorizationCodeGrant(spa, new URL(done.url), { pkceCodeVerifier: verifier });
  return tokens.refresh_token!;
}

/** One refresh at instance one or two. */
function refresh(pair: Pair, on: RunningIdentity, refreshToken: string) {
  return spaTokenRequest(pair.fetch, on.publicUrl, { grant_type: 'refresh_token', refresh_token: refreshToken });
}

/** Twenty concurrent refreshes with one token, alternating between the instances. */
function twentyRefreshes(pair: Pair, refreshToken: string) {
  return Promise.all(
    Array.from({ length: 20 }, (_, i) => refresh(pair, i % 2 === 0 ? pair.one : pair.two, refreshToken)),
  );
}

describeEachDatabase('refresh rotation across two instances, no grace window', (db) => {
  let pair: Pair | undefined;
  beforeAll(async () => {
    pair = await startPair(db, 0);
  });
  afterAll(() => closePair(pair));

  it('lets one of twenty concurrent refreshes win, refuses nineteen, and revokes the grant', async () => {
    const refreshToken = await refreshTokenFor(pair!);
    const answers = await twentyRefreshes(pair!, refreshToken);
    const winners = answers.filter((answer) => answer.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 400 && answer.body.error === 'invalid_grant')).toHaveLength(19);
    // Reuse revoked the grant: the winner's successor is refused on either instance.
    for (const on of [pair!.one, pair!.two]) {
      const successor = await refresh(pair!, on, winners[0]!.body.refresh_token!);
      expect([successor.status, successor.body.error]).toEqual([400, 'invalid_grant']);
    }
  });
});

describeEachDatabase('refresh rotation across two instances, 2 s grace window', (db) => {
  let pair: Pair | undefined;
  beforeAll(async () => {
    pair = await startPair(db, 2);
  });
  afterAll(() => closePair(pair));

  it('gives all twenty the same successor, keeps the grant, and revokes on a reuse after the window', async () => {
    const { one, two } = pair!;
    const refreshToken = await refreshTokenFor(pair!);
    const rotatedAt = Date.now();
    const answers = await twentyRefreshes(pair!, refreshToken);
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    const successors = new Set(answers.map((answer) => answer.body.refresh_token));
    expect(successors.size).toBe(1);
    const [successor] = [...successors] as string[];
    expect(successor).not.toBe(refreshToken);
    // Each gets an access token of its own.
    expect(new Set(answers.map((answer) => answer.body.access_token)).size).toBe(20);

    // The successor is held only sealed (a JWE), never in clear.
    const stored = await one.db.all<{ successor: string | null }>(
      sql`SELECT successor FROM identity_refresh_rotations`,
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]!.successor).toMatch(/^eyJ[\w-]*\.\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(stored[0]!.successor).not.toContain(successor);

    // The grant stays usable: the successor rotates as usual.
    const next = await refresh(pair!, two, successor!);
    expect(next.status).toBe(200);
    const latest = next.body.refresh_token!;

    // After the window, presenting the first token again is reuse: the grant is revoked.
    await sleep(Math.max(0, rotatedAt + 2_000 - Date.now()) + 300);
    const reuse = await refresh(pair!, one, refreshToken);
    expect([reuse.status, reuse.body.error]).toEqual([400, 'invalid_grant']);
    const afterReuse = await refresh(pair!, two, latest);
    expect([afterReuse.status, afterReuse.body.error]).toEqual([400, 'invalid_grant']);
    // And the sealed successors are gone with their window.
    expect(
      await one.db.all(sql`SELECT token_id FROM identity_refresh_rotations WHERE successor IS NOT NULL
        AND expires_at <= ${Date.now()}`),
    ).toEqual([]);
  }, 30_000);

  it('answers a rotated token presented again within the window with the same successor', async () => {
    const refreshToken = await refreshTokenFor(pair!);
    const first = await refresh(pair!, pair!.one, refreshToken);
    const again = await refresh(pair!, pair!.two, refreshToken);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.body.refresh_token).toBe(first.body.refresh_token);
    expect(again.body.access_token).not.toBe(first.body.access_token);
  });
});
