/**
 * Nothing lives only in memory: a restart keeps clients, keys and sessions, and two instances behind
 * one issuer on one PostgreSQL serve a single login flow between them.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { createLogger, uuidv7 } from '@cryptoutil/infra';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { identityConfigSchema } from '../src/config.js';
import { startIdentity, type RunningIdentity } from '../src/server.js';
import { Browser, KMS_SERVICE_SECRET, SEED, SPA_REDIRECT, formAction, formValue } from './harness.js';

const started: RunningIdentity[] = [];
const agents: Agent[] = [];
afterAll(async () => {
  await Promise.all(started.map((identity) => identity.close().catch(() => undefined)));
  await Promise.all(agents.map((agent) => agent.close()));
});

async function start(
  database: Record<string, unknown>,
  tlsDir: string,
  issuer?: string,
  overrides: Record<string, unknown> = {},
): Promise<RunningIdentity> {
  const identity = await startIdentity({
    config: identityConfigSchema.parse({
      ...overrides,
      server: { public_port: 0, admin_port: 0, ...(issuer ? { issuer } : {}) },
      database,
      tls: { dir: tlsDir },
      secrets: {
        cookie_keys: ['shared-cookie-key-0123456789abcdef0123'],
        signing_key_encryption: 'shared-at-rest-key-0123456789abcdef01',
      },
    }),
    logger: createLogger({ service: 'identity', silent: true }),
    version: 'test',
    dev: true,
    demoSeed: { path: SEED, reset: false },
  });
  started.push(identity);
  return identity;
}

function tlsFetch(rootCaPem: string): typeof fetch {
  const agent = new Agent({ connect: { ca: rootCaPem } });
  agents.push(agent);
  return ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
}

async function introspect(fetcher: typeof fetch, baseUrl: string, token: string): Promise<Record<string, unknown>> {
  const response = await fetcher(`${baseUrl}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await response.json()) as Record<string, unknown>;
}

/** A client-credentials request of kms-service. */
function tokenRequest(fetcher: typeof fetch, baseUrl: string): Promise<Response> {
  return fetcher(`${baseUrl}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'kms:read' }).toString(),
  });
}

async function token(fetcher: typeof fetch, baseUrl: string): Promise<string> {
  const response = await tokenRequest(fetcher, baseUrl);
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

describe('Identity restarts', () => {
  it('keeps clients, signing keys and issued tokens across a restart (SQLite file)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'identity-restart-'));
    const database = { url: `sqlite:${join(dir, 'identity.sqlite')}` };
    const issuer = 'https://127.0.0.1:18443';
    const first = await start(database, join(dir, 'tls'), issuer);
    const fetcher = tlsFetch(first.rootCaPem);
    const issued = await token(fetcher, first.publicUrl);
    const jwksBefore = await (await fetcher(`${first.publicUrl}/jwks`)).json();
    await first.close();
    started.splice(started.indexOf(first), 1);

    const second = await start(database, join(dir, 'tls'), issuer);
    expect(await (await fetcher(`${second.publicUrl}/jwks`)).json()).toEqual(jwksBefore);
    expect(await introspect(fetcher, second.publicUrl, issued)).toMatchObject({
      active: true,
      client_id: 'kms-service',
    });
    expect(decodeProtectedHeader(await token(fetcher, second.publicUrl)).kid).toBe(decodeProtectedHeader(issued).kid);
  });
});

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip;
postgres('two Identity instances on one PostgreSQL', () => {
  it('serve one login flow: started on one, finished on the other', async () => {
    const url = (await testPostgresUrl())!;
    const database = { url, schema: `test_${uuidv7().replace(/-/g, '_')}` };
    const dir = await mkdtemp(join(tmpdir(), 'identity-pair-'));
    const one = await start(database, join(dir, 'tls'));
    const two = await start(database, join(dir, 'tls'), one.issuer);
    const fetcher = tlsFetch(one.rootCaPem);
    const spa = await client.discovery(new URL(one.issuer), 'demo-spa', undefined, client.None(), {
      [client.customFetch]: fetcher as client.CustomFetch,
    });
    const verifier = client.randomPKCECodeVerifier();
    const authorize = client.buildAuthorizationUrl(spa, {
      redirect_uri: SPA_REDIRECT,
      scope: 'openid kms:encrypt',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser(fetcher, one.issuer);
    const page = await browser.follow(authorize.toString());
    const html = await page.response.text();
    // The form is posted to the other instance, as a load balancer might do.
    const onTwo = new URL(formAction(html), two.publicUrl).toString();
    const posted = await browser.request(onTwo, {
      form: { csrf: formValue(html, 'csrf'), username: 'demo-user', password: 'demo-user-password' },
    });
    expect(posted.status).toBe(303);
    const done = await browser.follow(new URL(posted.headers.get('location')!, one.issuer).toString());
    const tokens = await client.authorizationCodeGrant(spa, new URL(done.url), { pkceCodeVerifier: verifier });
    expect(tokens.access_token).toEqual(expect.any(String));
    // The other instance verifies and introspects the token the first one issued.
    expect(await introspect(fetcher, two.publicUrl, tokens.access_token)).toMatchObject({
      active: true,
      client_id: 'demo-spa',
    });
  });

  it('picks up a signing-key rotation made by the other instance within seconds', async () => {
    const url = (await testPostgresUrl())!;
    const database = { url, schema: `test_${uuidv7().replace(/-/g, '_')}` };
    const dir = await mkdtemp(join(tmpdir(), 'identity-keys-'));
    const one = await start(database, join(dir, 'tls'));
    const two = await start(database, join(dir, 'tls'), one.issuer);
    const fetcher = tlsFetch(one.rootCaPem);
    const kids = async (identity: RunningIdentity) =>
      ((await (await fetcher(`${identity.publicUrl}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map(
        (key) => key.kid,
      );
    const before = await kids(two);
    await one.rotateSigningKeys();
    const rotated = await kids(one);
    const fresh = rotated.filter((kid) => !before.includes(kid));
    expect(fresh).toHaveLength(2); // one ES256, one RS256
    // A token signed with the new key introspects as active on the other instance at once, before its sync.
    const signedByOne = await token(fetcher, one.publicUrl);
    expect(fresh).toContain(decodeProtectedHeader(signedByOne).kid);
    expect(await introspect(fetcher, two.publicUrl, signedByOne)).toMatchObject({ active: true });
    const deadline = Date.now() + 10_000;
    while ((await kids(two)).length !== rotated.length && Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 250));
    }
    expect((await kids(two)).sort()).toEqual([...rotated].sort());
    // And it signs with the new key.
    expect(fresh).toContain(decodeProtectedHeader(await token(fetcher, two.publicUrl)).kid);
  }, 30_000);

  it('share rate-limit buckets: a client gets the configured burst across both, not twice it', async () => {
    const url = (await testPostgresUrl())!;
    const database = { url, schema: `test_${uuidv7().replace(/-/g, '_')}` };
    const dir = await mkdtemp(join(tmpdir(), 'identity-limits-'));
    const limits = { rate_limits: { token_per_client: { burst: 3, per_second: 0.01 } } };
    const one = await start(database, join(dir, 'tls'), undefined, limits);
    const two = await start(database, join(dir, 'tls'), one.issuer, limits);
    const fetcher = tlsFetch(one.rootCaPem);
    const statuses = [];
    for (const identity of [one, two, one, two, one]) {
      const response = await tokenRequest(fetcher, identity.publicUrl);
      statuses.push(response.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });
});
