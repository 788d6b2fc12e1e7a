/**
 * integration.md "Cross-product end-to-end": Identity issues tokens, the KMS validates them by JWKS and
 * enforces scopes, with both products as real processes on TLS from one CA, on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import {
  type AppCallback,
  IMAGES,
  browserSuite as chromiumSuite,
  launchChromium,
  registerBrowserApp,
  signInAndAllow,
  startAppCallback,
} from './browser.js';
import { KMS_SERVICE_SECRET_FILE, kmsServiceToken, startStack, type Stack } from './stack.js';

const POSTGRES = Boolean(process.env.TEST_DATABASE_URL);
if (!POSTGRES) console.warn('e2e on PostgreSQL skipped: TEST_DATABASE_URL is not set.');

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: () => Record<string, unknown>;
}

// With two replicas each, behind round-robin proxies, every flow must work whichever process answers.
for (const [engine, replicas] of [
  ['sqlite', 1],
  ['postgres', 1],
  ['postgres', 2],
] as const) {
  const suite = engine === 'postgres' && !POSTGRES ? describe.skip : describe;
  suite(
    `KMS trusts Identity [${engine}${replicas > 1 ? `, ${replicas} processes each behind round-robin` : ''}]`,
    () => {
      let stack: Stack;
      let kmsService: client.Configuration;
      let keyId: string;

      const discover = (clientId: string, auth: client.ClientAuth, metadata?: Partial<client.ClientMetadata>) =>
        client.discovery(new URL(stack.identity.publicUrl), clientId, metadata, auth, {
          [client.customFetch]: stack.fetch as client.CustomFetch,
        });
      const token = async (scope: string, config = kmsService) =>
        (await client.clientCredentialsGrant(config, { scope })).access_token;
      const kms = async (method: string, path: string, accessToken?: string, body?: string): Promise<Answer> => {
        // Tokens and plaintexts must never reach either audit log (checked when the stack stops).
        if (accessToken) stack.secrets.add(accessToken);
        if (body !== undefined && !body.startsWith('{')) stack.secrets.add(body);
        const res = await stack.fetch(`${stack.kms.publicUrl}/service/api/v1${path}`, {
          method,
          headers: {
            ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
            ...(body === undefined ? {} : { 'content-type': body.startsWith('{') ? 'application/json' : 'text/plain' }),
          },
          ...(body === undefined ? {} : { body }),
        });
        const text = await res.text();
        return {
          status: res.status,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as Record<string, unknown>,
        };
      };
      const identityRequests = (path: string) =>
        stack.identity.lines().filter((line) => line.msg === 'request' && line.path === path);

      beforeAll(async () => {
        const url = engine === 'sqlite' ? 'sqlite' : await testPostgresUrl();
        stack = await startStack({ url: url ?? 'sqlite', schemaPrefix: `e2e_${Date.now()}` }, { replicas });
        const secret = (await readFile(KMS_SERVICE_SECRET_FILE, 'utf8')).trim();
        kmsService = await discover('kms-service', client.ClientSecretBasic(secret));
      });
      afterAll(async () => stack?.stop());

      it('lets kms-service create a key, encrypt and decrypt with a client-credentials token', async () => {
        const admin = await token('kms:admin');
        expect(decodeProtectedHeader(admin).typ).toBe('at+jwt');
        expect(decodeJwt(admin).aud).toBe(stack.kms.publicUrl);
        const created = await kms(
          'POST',
          '/elastickey',
          admin,
          JSON.stringify({ name: `e2e-${engine}`, description: 'e2e', algorithm: 'A256GCM/dir' }),
        );
        expect(created.status).toBe(201);
        keyId = String(created.json().elastic_key_id);
        const writer = await token('kms:encrypt kms:decrypt');
        const jwe = await kms('POST', `/elastickey/${keyId}/encrypt?context=e2e`, writer, 'hello from e2e');
        expect(jwe.status).toBe(200);
        const plain = await kms('POST', `/elastickey/${keyId}/decrypt?context=e2e`, writer, jwe.text);
        expect([plain.status, plain.text]).toEqual([200, 'hello from e2e']);
        // The KMS authenticated to Identity as kms-service to check revocation (Identity's access log).
        expect(identityRequests('/token/introspection').some((line) => line.client_id === 'kms-service')).toBe(true);
      });

      it('answers 401 without a token and 403 with the needed scope for a token that lacks it', async () => {
        const none = await kms('POST', `/elastickey/${keyId}/encrypt`, undefined, 'x');
        expect(none.status).toBe(401);
        // DPoP (RFC 9449 §7.1) is offered with the proof algorithms the KMS accepts.
        expect(none.headers.get('www-authenticate')).toMatch(
          /^Bearer realm="kms", DPoP realm="kms", algs="ES256 [A-Za-z0-9 ]+", Basic realm="kms", ApiKey realm="kms"$/,
        );
        expect(none.json()).toMatchObject({ code: 'authentication_required' });
        const reader = await token('kms:read');
        const refused = await kms('POST', `/elastickey/${keyId}/encrypt`, reader, 'x');
        expect(refused.status).toBe(403);
        expect(refused.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
        expect(refused.headers.get('www-authenticate')).toContain('scope="kms:encrypt"');
        expect(refused.json()).toMatchObject({ code: 'insufficient_scope', required_scope: 'kms:encrypt' });
        expect((await kms('GET', `/elastickey/${keyId}`, reader)).status).toBe(200);
      });

      it('fetches Identity JWKS once for many requests within the cache TTL (counted on Identity)', async () => {
        const before = identityRequests('/jwks').length;
        const reader = await token('kms:read');
        const answers = await Promise.all(Array.from({ length: 25 }, () => kms('GET', '/elastickeys', reader)));
        expect(answers.every((answer) => answer.status === 200)).toBe(true);
        expect(identityRequests('/jwks').length - before).toBe(0);
        // Once per KMS process (each keeps its own cache).
        expect(identityRequests('/jwks').length).toBe(replicas);
      });

      it('refuses an expired token with 401', async () => {
        const res = await stack.fetch(`${stack.identity.adminUrl}/admin/v1/clients`, {
          method: 'POST',
          headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ grant_types: ['client_credentials'], scope: 'kms:read', access_token_ttl: 5 }),
        });
        const created = (await res.json()) as { client_id: string; client_secret: string };
        const shortLived = await discover(created.client_id, client.ClientSecretBasic(created.client_secret));
        const accessToken = await token('kms:read', shortLived);
        expect((await kms('GET', '/elastickeys', accessToken)).status).toBe(200);
        await new Promise((done) => setTimeout(done, 6000));
        const expired = await kms('GET', '/elastickeys', accessToken);
        expect(expired.status).toBe(401);
        expect(expired.json()).toMatchObject({ code: 'token_expired' });
        expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');
      });

      it('refuses a revoked token for a sensitive operation', async () => {
        const accessToken = await token('kms:encrypt kms:read');
        expect((await kms('POST', `/elastickey/${keyId}/encrypt`, accessToken, 'x')).status).toBe(200);
        await client.tokenRevocation(kmsService, accessToken);
        const revoked = await kms('POST', `/elastickey/${keyId}/encrypt`, accessToken, 'x');
        expect(revoked.status).toBe(401);
        expect(revoked.json()).toMatchObject({ code: 'token_revoked' });
      });

      it('validates tokens signed with a rotated Identity key without restarting the KMS', async () => {
        const before = decodeProtectedHeader(await token('kms:read')).kid;
        const rotated = await stack.fetch(`${stack.identity.adminUrl}/admin/v1/keys/rotate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${stack.adminToken}` },
        });
        expect(rotated.status).toBe(201);
        // Other replicas pick the rotation up within seconds (they sync keys from the database).
        let fresh = await token('kms:read');
        for (let tries = 0; decodeProtectedHeader(fresh).kid === before && tries < 40; tries++) {
          await new Promise((done) => setTimeout(done, 250));
          fresh = await token('kms:read');
        }
        expect(decodeProtectedHeader(fresh).kid).not.toBe(before);
        const withFresh = await kms('GET', '/elastickeys', fresh);
        expect([withFresh.status, withFresh.text]).toEqual([200, expect.stringContaining('"items"')]);
        expect(stack.kms.child.exitCode).toBeNull();
      });

      it('returns 503 identity_unavailable for sensitive operations when Identity is down, reads keep working', async () => {
        const accessToken = await token('kms:encrypt kms:read');
        // Every KMS process has seen the token's key (validating it once fetched it if needed).
        for (const replica of stack.replicas.kms) {
          const read = await stack.fetch(`${replica.publicUrl}/service/api/v1/elastickeys`, {
            headers: { authorization: `Bearer ${accessToken}` },
          });
          expect(read.status).toBe(200);
        }
        for (const replica of stack.replicas.identity) {
          const exited = new Promise((done) => replica.child.once('exit', done));
          replica.child.kill('SIGTERM');
          await exited;
        }
        expect((await kms('GET', '/elastickeys', accessToken)).status).toBe(200);
        const closed = await kms('POST', `/elastickey/${keyId}/encrypt`, accessToken, 'x');
        expect(closed.status).toBe(503);
        expect(closed.json()).toMatchObject({ code: 'identity_unavailable' });
      });
    },
  );
}

const browserSuite = chromiumSuite('e2e browser test');

// With PostgreSQL, two processes of each product behind round-robin, and every connection is cut between
// the browser's steps, so a sign-in started on one Identity instance completes on the other.
const BROWSER_REPLICAS = POSTGRES ? 2 : 1;

browserSuite(
  `a person signs in through the real login page (headless Chromium${BROWSER_REPLICAS > 1 ? ', 2 processes each' : ''})`,
  () => {
    let stack: Stack;
    let callback: AppCallback;
    /** Makes the browser's next request open a new connection, which the proxy sends to the next process. */
    const nextInstance = () => stack.proxies.forEach((proxy) => proxy.dropConnections());
    /** How many Identity processes served the sign-in pages (`/auth`, `/interaction/...`). */
    const signInProcesses = () =>
      stack.replicas.identity.filter((replica) =>
        replica
          .lines()
          .some(
            (line) =>
              line.msg === 'request' &&
              typeof line.path === 'string' &&
              (line.path === '/auth' || line.path.startsWith('/interaction/')),
          ),
      ).length;

    beforeAll(async () => {
      const url = POSTGRES ? await testPostgresUrl() : undefined;
      stack = await startStack(
        { url: url ?? 'sqlite', schemaPrefix: `e2e_browser_${Date.now()}` },
        { replicas: url ? BROWSER_REPLICAS : 1 },
      );
      callback = await startAppCallback();
    });
    afterAll(async () => {
      await callback?.close();
      await stack?.stop();
    });

    it('gets a user token with the consented scopes that the KMS accepts, and refuses what the user lacks', async () => {
      const app = await registerBrowserApp(stack, {
        name: 'E2E browser app',
        callbackUrl: callback.url,
        scope: 'openid profile kms:read kms:encrypt',
        dpop: true,
      });
      expect(await signInAndAllow(stack, app, callback.url, nextInstance)).toContain('signed in');
      expect(signInProcesses()).toBe(stack.replicas.identity.length);
      const { config, verifier, state } = app;
      const redirect = new URL(callback.received[0]!, callback.url);
      stack.secrets.add(redirect.searchParams.get('code')!);
      // A public client must use DPoP (RFC 9449): its tokens are bound to a key only it holds.
      const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
      const tokens = await client.authorizationCodeGrant(
        config,
        redirect,
        { pkceCodeVerifier: verifier, expectedState: state },
        undefined,
        { DPoP: dpop },
      );
      expect(tokens.claims()?.preferred_username).toBe('demo-user');
      stack.secrets.add(tokens.access_token);
      const claims = decodeJwt(tokens.access_token);
      expect(claims).toMatchObject({ aud: stack.kms.publicUrl, scope: 'kms:read kms:encrypt' });
      expect(claims.cnf).toEqual({ jkt: await dpop.calculateThumbprint() });

      const call = async (method: string, path: string, body?: string): Promise<Response> => {
        const url = new URL(`${stack.kms.publicUrl}/service/api/v1${path}`);
        const headers = new Headers(body ? { 'content-type': 'application/json' } : {});
        try {
          return await client.fetchProtectedResource(config, tokens.access_token, url, method, body ?? null, headers, {
            DPoP: dpop,
          });
        } catch (error) {
          // A refusal with a challenge is an answer this test looks at.
          if (error instanceof client.WWWAuthenticateChallengeError) return error.response;
          throw error;
        }
      };
      expect((await call('GET', '/elastickeys')).status).toBe(200);
      const create = await call(
        'POST',
        '/elastickey',
        JSON.stringify({ name: 'x', description: 'x', algorithm: 'ES256' }),
      );
      expect(create.status).toBe(403);
      expect(((await create.json()) as { required_scope: string }).required_scope).toBe('kms:pool:create');
    });

    it('walks the demo relying party: sign in, see the tokens, encrypt and decrypt with the KMS', async () => {
      // The demo relying party keeps its session in process memory (demo only), so like any such app behind a
      // load balancer it needs session affinity: every connection to Identity goes to its first process.
      stack.proxies[0]?.pin(0);
      // The stack runs on free ports: point demo-spa at this Identity's relying-party callback.
      const patched = await stack.fetch(`${stack.identity.adminUrl}/admin/v1/clients/demo-spa`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          redirect_uris: [`${stack.identity.publicUrl}/demo/rp/callback`],
          post_logout_redirect_uris: [`${stack.identity.publicUrl}/demo/rp`],
        }),
      });
      expect(patched.status).toBe(200);
      // The key the page uses (pnpm demo creates it; here the service account does).
      const admin = await kmsServiceToken(stack, 'kms:admin');
      const key = await stack.fetch(`${stack.kms.publicUrl}/service/api/v1/elastickey`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'demo-encryption-aes256', description: 'demo-only', algorithm: 'A256GCM/dir' }),
      });
      expect(key.status).toBe(201);
      await mkdir(IMAGES, { recursive: true });
      const browser = await launchChromium(stack);
      try {
        const page = await browser.newPage();
        // The screenshots illustrate docs/DEMO-INTEGRATION.md.
        const shot = (name: string) => page.screenshot({ path: join(IMAGES, `rp-${name}.png`), fullPage: true });
        await page.goto(`${stack.identity.publicUrl}/demo/rp`);
        await shot('start');
        await page.getByRole('link', { name: 'Sign in with cryptoutil Identity' }).click();
        await shot('login');
        await page.getByLabel('Username').fill('demo-user');
        await page.getByLabel('Password').fill('demo-user-password');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { name: '2. Your tokens' }).waitFor();
        const claims = await page.locator('pre').nth(1).textContent();
        expect(JSON.parse(claims ?? '{}')).toMatchObject({ aud: stack.kms.publicUrl, client_id: 'demo-spa' });
        await shot('tokens');
        await page.getByRole('button', { name: 'Encrypt, then decrypt' }).click();
        await page.getByRole('heading', { name: '4. Result' }).waitFor();
        await shot('result');
        expect(await page.locator('ul').textContent()).toMatch(/encrypt → 200.*decrypt → 200/);
        expect(await page.locator('#plaintext').textContent()).toBe('hello from the demo');
        expect(await page.locator('pre.wrap').textContent()).toMatch(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/);
      } finally {
        await browser.close();
      }
    });
  },
);
