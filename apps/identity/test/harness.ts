/**
 * Component-test harness: a real Identity (TLS 1.3, migrated database, demo seed) on free ports, an
 * `openid-client` configuration per client, and the form browser of `@cryptoutil/infra` (cookie jar,
 * manual redirects) to drive the login form like a user would.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from '@jest/globals';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { FormBrowser, createLogger, formAction, formValue } from '@cryptoutil/infra';
import type { DatabaseTestContext } from '@cryptoutil/infra/testing';
import { identityConfigSchema } from '../src/config.js';
import { startIdentity, type RunningIdentity } from '../src/server.js';

export const SEED = fileURLToPath(new URL('../../../deployments/identity/config/demo-seed.yml', import.meta.url));
export const KMS_SERVICE_SECRET = 'demo-only-kms-service-secret-0123456789abcdef';
export const DEMO_WEB_SECRET = 'demo-only-demo-web-secret-0123456789abcdef';
/** The admin API's bearer token in tests that enable it (`secrets: SECRETS_WITH_ADMIN_TOKEN`). */
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789';
export const SECRETS_WITH_ADMIN_TOKEN = {
  cookie_keys: ['test-cookie-key-0123456789abcdef0123'],
  signing_key_encryption: 'test-at-rest-key-0123456789abcdef0123',
  admin_token: ADMIN_TOKEN,
};
export const SPA_REDIRECT = 'https://127.0.0.1:8082/demo/rp/callback';

export interface TestIdentity {
  identity: RunningIdentity;
  /** Where the test CA and leaves live (issue admin client certificates here). */
  tlsDir: string;
  agent: Agent;
  fetch: typeof fetch;
  discover(
    clientId: string,
    auth?: client.ClientAuth,
    metadata?: Partial<client.ClientMetadata>,
  ): Promise<client.Configuration>;
}

export async function startTestIdentity(
  db: DatabaseTestContext,
  overrides: Record<string, unknown> = {},
): Promise<TestIdentity> {
  await db.open();
  const dir = await mkdtemp(join(tmpdir(), 'identity-test-'));
  const config = identityConfigSchema.parse({
    server: { public_port: 0, admin_port: 0 },
    database: db.dialect === 'sqlite' ? { url: 'sqlite::memory:' } : { url: db.url(), schema: db.schema },
    tls: { dir: join(dir, 'tls') },
    secrets: {
      cookie_keys: ['test-cookie-key-0123456789abcdef0123'],
      signing_key_encryption: 'test-at-rest-key-0123456789abcdef0123',
    },
    log: { level: 'error' },
    ...overrides,
  });
  const identity = await startIdentity({
    config,
    logger: createLogger({ service: 'identity', silent: true }),
    version: 'test',
    dev: true,
    demoSeed: { path: SEED, reset: false },
  });
  const agent = new Agent({ connect: { ca: identity.rootCaPem } });
  const tlsFetch = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
  return {
    identity,
    tlsDir: join(dir, 'tls'),
    agent,
    fetch: tlsFetch,
    async discover(clientId, auth, metadata) {
      return client.discovery(new URL(identity.issuer), clientId, metadata, auth, {
        [client.customFetch]: tlsFetch as client.CustomFetch,
      });
    },
  };
}

/** A tiny browser: follows redirects by hand within the issuer, keeps cookies, stops at the client's redirect. */
export { FormBrowser as Browser, formAction, formValue } from '@cryptoutil/infra';

/** Logs in through the real form and returns the client's callback URL (with code and state). */
export async function loginThroughForm(
  t: TestIdentity,
  authorizationUrl: URL,
  username: string,
  password: string,
): Promise<URL> {
  const browser = new FormBrowser(t.fetch, t.identity.issuer);
  const page = await browser.follow(authorizationUrl.toString());
  expect(page.response.status).toBe(200);
  const html = await page.response.text();
  expect(html).toContain('Sign in');
  const done = await browser.follow(new URL(formAction(html), t.identity.issuer).toString(), {
    form: { csrf: formValue(html, 'csrf'), username, password },
  });
  return new URL(done.url);
}

export async function startPkce(config: client.Configuration, extra: Record<string, string> = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: SPA_REDIRECT,
    scope: 'openid profile offline_access kms:encrypt',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  return { verifier, state, url };
}

/** A token request of the public client `demo-spa` (form-encoded): the status and the JSON answer. */
export async function spaTokenRequest(
  fetcher: typeof fetch,
  issuer: string,
  body: Record<string, string>,
): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetcher(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'demo-spa', ...body }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}
