import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { SWAGGER_UI_CSP } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';
import { identityConfigSchema } from '../src/config.js';
import {
  loginThroughForm,
  startPkce,
  startTestIdentity,
  SPA_REDIRECT,
  type TestIdentity,
  ADMIN_TOKEN,
  SECRETS_WITH_ADMIN_TOKEN,
} from './harness.js';

const SECRETS = SECRETS_WITH_ADMIN_TOKEN;

/**
 * A token request refused with `invalid_client`: openid-client reports it as a body error, or as a
 * `WWW-Authenticate` challenge when the client used HTTP Basic.
 */
async function expectInvalidClient(attempt: Promise<unknown>): Promise<void> {
  const failure = (await attempt.then(
    () => undefined,
    (error: unknown) => error,
  )) as { error?: string; cause?: { parameters?: { error?: string } }[] } | undefined;
  expect(failure).toBeDefined();
  expect(failure?.error ?? failure?.cause?.[0]?.parameters?.error).toBe('invalid_client');
}

interface Answer {
  status: number;
  type: string;
  headers: Headers;
  body: Record<string, unknown>;
}

describeEachDatabase('Identity admin API', (db) => {
  let t: TestIdentity;
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    options: { token?: string | null; dispatcher?: Agent } = {},
  ): Promise<Answer> => {
    const token = options.token === undefined ? ADMIN_TOKEN : options.token;
    const res = await undiciFetch(`${t.identity.adminUrl}${path}`, {
      method,
      dispatcher: options.dispatcher ?? t.agent,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      headers: res.headers as unknown as Headers,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
  };

  beforeAll(async () => {
    t = await startTestIdentity(db, { secrets: SECRETS, login: { max_failures: 2, lockout_seconds: 900 } });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  it('refuses callers without the admin token or an administrator certificate, but keeps probes open', async () => {
    const anonymous = await call('GET', '/admin/v1/users', undefined, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.type).toContain('application/problem+json');
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="identity-admin"');
    expect(anonymous.body).toMatchObject({ status: 401, code: 'authentication_required' });
    const wrong = await call('GET', '/admin/v1/clients', undefined, { token: `${ADMIN_TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('invalid_token');
    expect((await call('POST', '/admin/v1/shutdown', undefined, { token: null })).status).toBe(401);
    expect((await call('POST', '/admin/v1/keys/rotate', undefined, { token: null })).status).toBe(401);
    expect((await call('GET', '/admin/v1/livez', undefined, { token: null })).status).toBe(200);
    expect((await call('GET', '/admin/v1/readyz', undefined, { token: null })).status).toBe(200);
  });

  it('accepts a CA client certificate named as administrator and refuses other names', async () => {
    const ca = await loadOrCreateCa(t.tlsDir);
    const agentFor = async (name: string) => {
      const leaf = await loadOrIssueLeaf(t.tlsDir, name, ca, { commonName: name, usage: 'client' });
      return new Agent({ connect: { ca: t.identity.rootCaPem, cert: leaf.chainPem, key: leaf.keyPem } });
    };
    const admin = await agentFor('identity-admin');
    const other = await agentFor('someone-else');
    try {
      expect((await call('GET', '/admin/v1/users', undefined, { token: null, dispatcher: admin })).status).toBe(200);
      expect((await call('GET', '/admin/v1/users', undefined, { token: null, dispatcher: other })).status).toBe(401);
    } finally {
      await admin.close();
      await other.close();
    }
  });

  it('creates a user who can then sign in, never shows the hash, and updates, unlocks, disables and deletes', async () => {
    const username = `ada-${db.dialect}`;
    const created = await call('POST', '/admin/v1/users', {
      username,
      password: 'first-password-1234',
      email: 'ada@example.com',
      roles: ['kms:reader'],
      tenant_id: '6c0f7a9e-2d31-4c1b-9a57-0d7e3f1b2a44',
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/admin/v1/users/${String(created.body.id)}`);
    expect(created.body).toMatchObject({ username, email: 'ada@example.com', roles: ['kms:reader'], enabled: true });
    expect(JSON.stringify(created.body)).not.toMatch(/pbkdf2|password/);
    const id = String(created.body.id);

    const spa = await t.discover('demo-spa', client.None());
    const signIn = async (password: string) => {
      const { verifier, state, url } = await startPkce(spa);
      const callback = await loginThroughForm(t, url, username, password);
      if (callback.origin + callback.pathname !== SPA_REDIRECT) return undefined;
      return client.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: verifier, expectedState: state });
    };
    const tokens = await signIn('first-password-1234');
    expect(decodeJwt(tokens!.access_token)).toMatchObject({
      tenant_id: '6c0f7a9e-2d31-4c1b-9a57-0d7e3f1b2a44',
      roles: ['kms:reader'],
    });

    const duplicate = await call('POST', '/admin/v1/users', { username, password: 'another-password-1234' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe('username_taken');

    const changed = await call('PATCH', `/admin/v1/users/${id}`, { password: 'second-password-1234', name: 'Ada' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: 'Ada', email: 'ada@example.com' });
    expect(await signIn('first-password-1234')).toBeUndefined();
    expect(await signIn('second-password-1234')).toBeDefined();

    // Two wrong passwords lock the account (max_failures 2 here); an administrator unlocks it.
    expect(await signIn('wrong-password-0000')).toBeUndefined();
    expect(await signIn('wrong-password-0000')).toBeUndefined();
    expect(await signIn('second-password-1234')).toBeUndefined();
    expect((await call('GET', `/admin/v1/users/${id}`)).body.locked_until).toEqual(expect.any(String));
    const unlocked = await call('PATCH', `/admin/v1/users/${id}`, { unlock: true });
    expect(unlocked.body.locked_until).toBeNull();
    expect(await signIn('second-password-1234')).toBeDefined();

    const disabled = await call('PATCH', `/admin/v1/users/${id}`, { enabled: false });
    expect(disabled.body.enabled).toBe(false);
    expect(await signIn('second-password-1234')).toBeUndefined();

    expect((await call('GET', `/admin/v1/users/${id}`)).body.username).toBe(username);
    expect((await call('DELETE', `/admin/v1/users/${id}`)).status).toBe(204);
    const gone = await call('GET', `/admin/v1/users/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('user_not_found');
    expect((await call('DELETE', `/admin/v1/users/${id}`)).status).toBe(404);
  });

  it('refuses bad user input with a problem naming the field', async () => {
    const short = await call('POST', '/admin/v1/users', { username: 'bob', password: 'short' });
    expect(short.status).toBe(400);
    expect(short.type).toContain('application/problem+json');
    expect(short.body).toMatchObject({ code: 'invalid_body', field: 'password' });
    const unknown = await call('POST', '/admin/v1/users', {
      username: 'bob',
      password: 'long-enough-password',
      password_hash: 'x',
    });
    expect(unknown.status).toBe(400);
    const empty = await call('PATCH', '/admin/v1/users/anything', {});
    expect(empty.status).toBe(400);
    const badPage = await call('GET', '/admin/v1/users?size=0');
    expect(badPage.body).toMatchObject({ status: 400, code: 'invalid_query', field: 'size' });
    const notJson = await undiciFetch(`${t.identity.adminUrl}/admin/v1/users`, {
      method: 'POST',
      dispatcher: t.agent,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/plain' },
      body: 'username=bob',
    });
    expect(notJson.status).toBe(415);
  });

  it('lists users and clients in pages with totals', async () => {
    const users = await call('GET', '/admin/v1/users?size=1');
    expect(users.status).toBe(200);
    expect(users.body).toMatchObject({ page: 0, size: 1 });
    expect(users.body.items).toHaveLength(1);
    expect(Number(users.body.total)).toBeGreaterThanOrEqual(2);
    const clients = await call('GET', '/admin/v1/clients?page=0&size=100');
    const ids = (clients.body.items as { client_id: string }[]).map((item) => item.client_id);
    expect(ids).toEqual(expect.arrayContaining(['kms-service', 'demo-spa', 'demo-web']));
    expect(JSON.stringify(clients.body)).not.toMatch(/pbkdf2|client_secret"/);
  });

  it('creates a confidential client whose secret is shown once, rotates and revokes it by deletion', async () => {
    const clientId = `batch-${db.dialect}`;
    const created = await call('POST', '/admin/v1/clients', {
      client_id: clientId,
      client_name: 'Nightly batch',
      grant_types: ['client_credentials'],
      scope: 'kms:encrypt',
      tenant_id: '0b7e5c2a-8f3d-4e61-b9a0-5d2c7e1f3a88',
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const secret = String(created.body.client_secret);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({ client_id: clientId, token_endpoint_auth_method: 'client_secret_basic' });
    const read = await call('GET', `/admin/v1/clients/${clientId}`);
    expect(read.body.client_secret).toBeUndefined();
    expect(read.body.client_name).toBe('Nightly batch');

    const grant = async (value: string) =>
      client.clientCredentialsGrant(await t.discover(clientId, client.ClientSecretBasic(value)), {
        scope: 'kms:encrypt',
      });
    expect(decodeJwt((await grant(secret)).access_token)).toMatchObject({
      client_id: clientId,
      scope: 'kms:encrypt',
      tenant_id: '0b7e5c2a-8f3d-4e61-b9a0-5d2c7e1f3a88',
    });

    const rotated = await call('POST', `/admin/v1/clients/${clientId}/secret`);
    expect(rotated.status).toBe(200);
    const newSecret = String(rotated.body.client_secret);
    expect(newSecret).not.toBe(secret);
    await expectInvalidClient(grant(secret));
    expect((await grant(newSecret)).access_token).toEqual(expect.any(String));

    const renamed = await call('PATCH', `/admin/v1/clients/${clientId}`, { client_name: 'Batch', trusted: true });
    expect(renamed.body).toMatchObject({ client_name: 'Batch', trusted: true, scope: 'kms:encrypt' });
    expect(renamed.body.client_secret).toBeUndefined();

    expect((await call('DELETE', `/admin/v1/clients/${clientId}`)).status).toBe(204);
    await expectInvalidClient(grant(newSecret));
    expect((await call('GET', `/admin/v1/clients/${clientId}`)).status).toBe(404);
  });

  it('registers a client with a public key that then authenticates with private_key_jwt', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'batch-key-1', alg: 'ES256', use: 'sig' };
    const clientId = `signed-${db.dialect}`;
    const created = await call('POST', '/admin/v1/clients', {
      client_id: clientId,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
      scope: 'kms:sign',
    });
    expect(created.status).toBe(201);
    expect(created.body.client_secret).toBeUndefined();
    const signed = await t.discover(clientId, client.PrivateKeyJwt({ key: privateKey, kid: 'batch-key-1' }));
    const token = await client.clientCredentialsGrant(signed, { scope: 'kms:sign' });
    expect(decodeJwt(token.access_token)).toMatchObject({ client_id: clientId, scope: 'kms:sign' });
    const stranger = await generateKeyPair('ES256');
    const forged = await t.discover(clientId, client.PrivateKeyJwt({ key: stranger.privateKey, kid: 'batch-key-1' }));
    await expectInvalidClient(client.clientCredentialsGrant(forged, { scope: 'kms:sign' }));
  });

  it('authenticates a tls_client_auth client by its CA certificate subject (RFC 8705)', async () => {
    const clientId = `mtls-${db.dialect}`;
    const created = await call('POST', '/admin/v1/clients', {
      client_id: clientId,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: `CN=${clientId}`,
      scope: 'kms:encrypt',
    });
    expect(created.status).toBe(201);
    const ca = await loadOrCreateCa(t.tlsDir);
    const withCertificate = async (commonName?: string) => {
      const leaf = commonName
        ? await loadOrIssueLeaf(t.tlsDir, commonName, ca, { commonName, usage: 'client' })
        : undefined;
      const agent = new Agent({
        connect: { ca: t.identity.rootCaPem, ...(leaf ? { cert: leaf.chainPem, key: leaf.keyPem } : {}) },
      });
      const mtlsFetch = ((url: string, init?: RequestInit) =>
        undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as client.CustomFetch;
      const config = await client.discovery(new URL(t.identity.issuer), clientId, undefined, client.TlsClientAuth(), {
        [client.customFetch]: mtlsFetch,
      });
      try {
        return await client.clientCredentialsGrant(config, { scope: 'kms:encrypt' });
      } finally {
        await agent.close();
      }
    };
    expect(decodeJwt((await withCertificate(clientId)).access_token)).toMatchObject({ client_id: clientId });
    await expectInvalidClient(withCertificate(undefined));
    await expectInvalidClient(withCertificate(`other-${db.dialect}`));
  });

  it('documents every admin operation in OpenAPI, served with Swagger UI on the public listener', async () => {
    const res = await t.fetch(`${t.identity.publicUrl}/.well-known/openapi.json`);
    expect(res.status).toBe(200);
    const document = (await res.json()) as {
      servers: { url: string }[];
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> };
    };
    expect(document.servers[0]!.url).toBe(t.identity.adminUrl);
    expect(document.components.schemas.ClientCreate!.properties.token_endpoint_auth_method!.enum).toContain(
      'tls_client_auth',
    );
    // Every documented operation is routed: an unknown id answers the resource's own 404, never the generic one.
    let operations = 0;
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of Object.keys(item).filter((key) => key !== 'parameters')) {
        const answer = await call(method.toUpperCase(), path.replace('{id}', 'missing-id'));
        expect([path, method, answer.body.code]).not.toEqual([path, method, 'not_found']);
        operations += 1;
      }
    }
    expect(operations).toBe(13);
    const ui = await t.fetch(`${t.identity.publicUrl}/ui/swagger/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('cryptoutil Identity admin API');
    // Its own policy (scripts from the origin), not the stricter one every other Identity answer carries.
    expect(ui.headers.get('content-security-policy')).toBe(SWAGGER_UI_CSP);
  });

  it('gives a client its own access-token lifetime (access_token_ttl)', async () => {
    const clientId = `short-${db.dialect}`;
    const created = await call('POST', '/admin/v1/clients', {
      client_id: clientId,
      grant_types: ['client_credentials'],
      scope: 'kms:read',
      access_token_ttl: 7,
    });
    expect(created.status).toBe(201);
    const config = await t.discover(clientId, client.ClientSecretBasic(String(created.body.client_secret)));
    const claims = decodeJwt((await client.clientCredentialsGrant(config, { scope: 'kms:read' })).access_token);
    expect(claims.exp! - claims.iat!).toBe(7);
    const tooShort = await call('PATCH', `/admin/v1/clients/${clientId}`, { access_token_ttl: 1 });
    expect(tooShort.status).toBe(400);
  });

  it('checks client metadata with the provider before storing it', async () => {
    const noRedirect = await call('POST', '/admin/v1/clients', {
      client_id: `web-${db.dialect}`,
      grant_types: ['authorization_code'],
    });
    expect(noRedirect.status).toBe(400);
    expect(noRedirect.body).toMatchObject({ code: 'invalid_client_metadata' });
    expect(String(noRedirect.body.detail)).toMatch(/redirect_uris/);
    const withSecret = await call('POST', '/admin/v1/clients', {
      grant_types: ['client_credentials'],
      client_secret: 'chosen-by-me',
    });
    expect(withSecret.status).toBe(400);
    const publicClient = await call('POST', '/admin/v1/clients', {
      grant_types: ['authorization_code'],
      redirect_uris: ['https://app.example/callback'],
      token_endpoint_auth_method: 'none',
    });
    expect(publicClient.status).toBe(201);
    expect(publicClient.body.client_secret).toBeUndefined();
    expect(String(publicClient.body.client_id)).toMatch(/^[0-9a-f-]{36}$/);
    const noSecret = await call('POST', `/admin/v1/clients/${String(publicClient.body.client_id)}/secret`);
    expect(noSecret.status).toBe(409);
    // Turning a public client confidential gives it a secret, shown in that answer.
    const confidential = await call('PATCH', `/admin/v1/clients/${String(publicClient.body.client_id)}`, {
      token_endpoint_auth_method: 'client_secret_post',
    });
    expect(confidential.body.client_secret).toEqual(expect.any(String));
  });
});

describe('admin configuration', () => {
  it('refuses an admin token shorter than 32 characters', () => {
    const result = identityConfigSchema.safeParse({ secrets: { ...SECRETS, admin_token: 'short' } });
    expect(result.success).toBe(false);
  });
});
