/**
 * Vault Transit compatibility, driven by the real npm `node-vault` client, unchanged (only `endpoint`,
 * `token` and the test CA), against a listening HTTPS KMS on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import nodeVault from 'node-vault';
import request from 'supertest';
import { compactDecrypt, importJWK } from 'jose';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { AuditLog, hashPassword } from '@cryptoutil/infra';
import { TokenValidator } from '@cryptoutil/jose-authority';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import { VAULT_TRANSIT_ACCESS_RULES, accessControl } from '../src/api/access.js';
import { createPublicApp } from '../src/api/app.js';
import { createAuthenticator } from '../src/api/authentication.js';
import { openApiDocument } from '../src/api/openapi.js';
import { authorizationForVaultToken } from '../src/api/vault-transit.js';
import { Barrier } from '../src/barrier/barrier.js';
import { deriveUnsealKeys } from '../src/barrier/unseal.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { DEFAULT_DELETE_GRACE_PERIOD_MS, type KmsContext } from '../src/domain/kms-context.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { EncryptionUsage } from '../src/domain/encryption-usage.js';
import { TenantDirectory } from '../src/domain/tenant.js';
import { usableMaterial } from '../src/domain/material-key.js';
import { getElasticKey } from '../src/domain/elastic-key.js';
import { POLICY, SECRETS, testTls } from './harness.js';

const AUDIENCE = 'https://kms.test';
const API_KEY_SECRET = 'vault-secret-0123456789';
const issuer = new FakeIssuer();
let apiKeyHash: string;
beforeAll(async () => {
  apiKeyHash = await hashPassword(API_KEY_SECRET, 1000);
  await issuer.start();
  await issuer.addKey('identity-key-1');
  issuer.audience = AUDIENCE;
});
afterAll(async () => issuer.stop());

type Vault = ReturnType<typeof nodeVault>;
interface VaultFailure {
  message: string;
  response: { statusCode: number; body: { errors?: string[]; data?: { batch_results?: Record<string, unknown>[] } } };
}

/** The rejection of a node-vault call (an ApiResponseError carrying status and body). */
async function failure(call: Promise<unknown>): Promise<VaultFailure> {
  try {
    await call;
  } catch (error) {
    return error as VaultFailure;
  }
  throw new Error('the call succeeded');
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const text = (base64: string) => Buffer.from(base64, 'base64').toString('utf8');

describeEachDatabase('Vault Transit compatibility', (database) => {
  let server: https.Server;
  let endpoint: string;
  let rootPem: string;
  let ctxOf: () => Promise<KmsContext>;
  const client = (token: string): Vault =>
    nodeVault({ endpoint, token, requestOptions: { ca: rootPem } } as Parameters<typeof nodeVault>[0]);
  const bearer = (scope: string, claims: Record<string, unknown> = {}) => issuer.token({ scope, ...claims });
  let vault: Vault;
  let audit: AuditLog;

  beforeAll(async () => {
    const db = await database.open(KMS_MIGRATIONS);
    const barrier = await Barrier.unseal(db, deriveUnsealKeys(POLICY, SECRETS), { allSharesGiven: true });
    const base = {
      db,
      barrier,
      now: () => new Date(),
      deleteGracePeriodMs: DEFAULT_DELETE_GRACE_PERIOD_MS,
      usage: new EncryptionUsage(),
    };
    const tenants = await TenantDirectory.open(base);
    ctxOf = () => tenants.context(tenants.defaultTenant.id);
    const validator = new TokenValidator({
      issuer: issuer.url,
      audience: AUDIENCE,
      revocation: { auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 'kms-secret-0123456789' } },
    });
    const realms = buildRealms(realmFileSchema.parse({ version: 1, realms: [] }), { demo: false });
    const authenticate = createAuthenticator({
      methods: ['bearer', 'api_key'],
      validator,
      login: createPasswordLogin({ realms, db, lockout: { maxFailures: 3, lockoutMs: 60_000 } }),
      apiKeys: [{ id: 'batch', keyHash: apiKeyHash, scopes: ['kms:encrypt'] }],
      certificates: [],
    });
    audit = new AuditLog(db, 'kms');
    const tls = await testTls();
    rootPem = tls.rootPem;
    server = https.createServer(
      { cert: tls.chain, key: tls.key },
      createPublicApp(tenants, {
        access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['ApiKey'] }),
        audit,
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `https://localhost:${(server.address() as AddressInfo).port}`;
    vault = client(await bearer('kms:write kms:read'));
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('creates an aes256-gcm96 key, encrypts, decrypts, rotates, encrypts with v2 and rewraps v1 to v2', async () => {
    const created = await vault.write('transit/keys/orders', { type: 'aes256-gcm96' });
    expect(created.data).toMatchObject({ name: 'orders', type: 'aes256-gcm96', jose_algorithm: 'A256GCM/dir' });
    const again = await vault.write('transit/keys/orders', { type: 'aes256-gcm96' });
    expect(again.warnings).toEqual(['key orders already existed']);

    const first = await vault.encryptData({ name: 'orders', plaintext: b64('order #1') });
    expect(first.data.key_version).toBe(1);
    expect(first.data.ciphertext).toMatch(/^vault:v1:[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+$/);
    // node-vault sends `name` in the body too: ignored with Vault's warning.
    expect(first.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [name]']);
    // The ciphertext is a standard JWE: the material key itself (read in the test) decrypts it with jose.
    const jwe = String(first.data.ciphertext).slice('vault:v1:'.length);
    const ctx = await ctxOf();
    const key = (await vault.transitReadKey({ name: 'orders' })).data as { elastic_key_id: string };
    const material = await usableMaterial(ctx, await getElasticKey(ctx, key.elastic_key_id));
    const opened = await compactDecrypt(jwe, await importJWK(material.jwk, 'dir'));
    expect(Buffer.from(opened.plaintext).toString()).toBe('order #1');

    const decrypted = await vault.decryptData({ name: 'orders', ciphertext: first.data.ciphertext });
    expect(text(decrypted.data.plaintext)).toBe('order #1');

    const rotated = await vault.write('transit/keys/orders/rotate', {});
    expect(rotated.data).toMatchObject({ latest_version: 2, min_decryption_version: 1 });
    const read = await vault.transitReadKey({ name: 'orders' });
    expect(read.data).toMatchObject({ type: 'aes256-gcm96', latest_version: 2, supports_encryption: true });
    expect(Object.keys(read.data.keys)).toEqual(['1', '2']);
    expect(typeof read.data.keys['1']).toBe('number');

    const second = await vault.encryptData({ name: 'orders', plaintext: b64('order #2') });
    expect(second.data).toMatchObject({ key_version: 2, ciphertext: expect.stringMatching(/^vault:v2:/) });
    const rewrapped = await vault.rewrapData({ name: 'orders', ciphertext: first.data.ciphertext });
    expect(rewrapped.data).toMatchObject({ key_version: 2, ciphertext: expect.stringMatching(/^vault:v2:/) });
    const fromRewrap = await vault.decryptData({ name: 'orders', ciphertext: rewrapped.data.ciphertext });
    expect(text(fromRewrap.data.plaintext)).toBe('order #1');
    // The old ciphertext still decrypts: its kid picks version 1.
    expect(text((await vault.decryptData({ name: 'orders', ciphertext: first.data.ciphertext })).data.plaintext)).toBe(
      'order #1',
    );
  });

  it('refuses a v<N> prefix that disagrees with the JWE kid; key_version picks an existing version', async () => {
    await vault.write('transit/keys/versions', { type: 'aes128-gcm96' });
    const v1 = (await vault.encryptData({ name: 'versions', plaintext: b64('x') })).data.ciphertext as string;
    await vault.write('transit/keys/versions/rotate', {});
    const lying = await failure(
      vault.decryptData({ name: 'versions', ciphertext: v1.replace('vault:v1:', 'vault:v2:') }),
    );
    expect(lying.response.statusCode).toBe(400);
    expect(lying.message).toBe('invalid key version: the value says v2 but was made with v1');
    // key_version picks a version, as in Vault: v1 still encrypts (min_encryption_version is 0), v2 is the latest.
    const old = await vault.encryptData({ name: 'versions', plaintext: b64('old'), key_version: 1 });
    expect(old.data).toMatchObject({ key_version: 1, ciphertext: expect.stringMatching(/^vault:v1:/) });
    const opened = await vault.decryptData({ name: 'versions', ciphertext: old.data.ciphertext });
    expect(Buffer.from(opened.data.plaintext as string, 'base64').toString()).toBe('old');
    const latest = await vault.encryptData({ name: 'versions', plaintext: b64('x'), key_version: 2 });
    expect(latest.data.key_version).toBe(2);
    const missing = await failure(vault.encryptData({ name: 'versions', plaintext: b64('x'), key_version: 7 }));
    expect([missing.response.statusCode, missing.message]).toEqual([400, 'This elastic key has no version 7.']);
    const garbage = await failure(vault.decryptData({ name: 'versions', ciphertext: 'vault:v1:not-a-jwe' }));
    expect(garbage.response.statusCode).toBe(400);
  });

  it('binds context: the same base64 context is needed to decrypt, and equals the native ?context=', async () => {
    await vault.write('transit/keys/contexts', {});
    const context = b64('tenant-42');
    const sealed = await vault.encryptData({ name: 'contexts', plaintext: b64('row'), context });
    const without = await failure(vault.decryptData({ name: 'contexts', ciphertext: sealed.data.ciphertext }));
    expect(without.response.statusCode).toBe(400);
    const withIt = await vault.decryptData({ name: 'contexts', ciphertext: sealed.data.ciphertext, context });
    expect(text(withIt.data.plaintext)).toBe('row');
    const id = (await vault.transitReadKey({ name: 'contexts' })).data.elastic_key_id as string;
    const native = await request(server)
      .post(`/service/api/v1/elastickey/${id}/decrypt?context=tenant-42`)
      .ca(rootPem)
      .set('Authorization', `Bearer ${await bearer('kms:decrypt')}`)
      .type('text/plain')
      .send(String(sealed.data.ciphertext).replace(/^vault:v1:/, ''));
    expect([native.status, Buffer.from(native.body as Buffer).toString()]).toEqual([200, 'row']);
  });

  it.each([
    ['ecdsa-p256', 'ES256'],
    ['ed25519', 'EdDSA'],
    ['rsa-2048', 'PS256'],
  ])('signs and verifies with a %s key (%s JWS, detached)', async (type, alg) => {
    const name = `signer-${type}`;
    const created = await vault.write(`transit/keys/${name}`, { type });
    expect(created.data).toMatchObject({ type, jose_algorithm: alg, supports_signing: true });
    const publicKey = (created.data.keys as Record<string, { public_key: string }>)['1']!.public_key;
    expect(publicKey.length).toBeGreaterThan(40);
    const input = b64('release 1.2.3');
    const signed = await vault.write(`transit/sign/${name}`, { input });
    expect(signed.data).toMatchObject({
      key_version: 1,
      signature: expect.stringMatching(/^vault:v1:[\w-]+\.\.[\w-]+$/),
    });
    const header = JSON.parse(
      Buffer.from(String(signed.data.signature).split(':')[2]!.split('.')[0]!, 'base64url').toString(),
    );
    expect(header.alg).toBe(alg);
    const valid = await vault.write(`transit/verify/${name}`, { input, signature: signed.data.signature });
    expect(valid.data).toEqual({ valid: true });
    const other = await vault.write(`transit/verify/${name}`, {
      input: b64('release 6.6.6'),
      signature: signed.data.signature,
    });
    expect(other.data).toEqual({ valid: false });
  });

  it('checks hash_algorithm against the key: sign/:name/sha2-256 works for ES256, sha2-512 is refused', async () => {
    await vault.write('transit/keys/hashes', { type: 'ecdsa-p256' });
    const ok = await vault.write('transit/sign/hashes/sha2-256', { input: b64('x') });
    expect(ok.data.key_version).toBe(1);
    const refused = await failure(vault.write('transit/sign/hashes', { input: b64('x'), hash_algorithm: 'sha2-512' }));
    expect([refused.response.statusCode, refused.message]).toEqual([
      400,
      'hash_algorithm sha2-512 does not fit this key: ES256 uses sha2-256',
    ]);
  });

  it('makes data keys whose ciphertext decrypts to the returned key bytes (plaintext and wrapped)', async () => {
    await vault.write('transit/keys/envelopes', {});
    const plain = await vault.write('transit/datakey/plaintext/envelopes', { bits: 512 });
    expect(Buffer.from(String(plain.data.plaintext), 'base64')).toHaveLength(64);
    const opened = await vault.decryptData({ name: 'envelopes', ciphertext: plain.data.ciphertext });
    expect(opened.data.plaintext).toBe(plain.data.plaintext);
    const wrapped = await vault.write('transit/datakey/wrapped/envelopes', {});
    expect(wrapped.data.plaintext).toBeUndefined();
    const unwrapped = await vault.decryptData({ name: 'envelopes', ciphertext: wrapped.data.ciphertext });
    expect(Buffer.from(String(unwrapped.data.plaintext), 'base64')).toHaveLength(32);
    const bits = await failure(vault.write('transit/datakey/plaintext/envelopes', { bits: 100 }));
    expect(bits.response.statusCode).toBe(400);
  });

  it('runs batch_input item by item: one bad item gets its error, the others their results (400, as Vault)', async () => {
    await vault.write('transit/keys/batches', {});
    const failed = await failure(
      vault.encryptData({
        name: 'batches',
        batch_input: [
          { plaintext: b64('one'), reference: 'a' },
          { plaintext: 'not base64!', reference: 'b' },
          { plaintext: b64('three'), reference: 'c' },
        ],
      }),
    );
    expect(failed.response.statusCode).toBe(400);
    const results = failed.response.body.data!.batch_results!;
    expect(results.map((result) => result.reference)).toEqual(['a', 'b', 'c']);
    expect(results[1]).toEqual({ error: 'plaintext must be base64 (standard alphabet, padded)', reference: 'b' });
    expect(results[0]).toMatchObject({ key_version: 1, ciphertext: expect.stringMatching(/^vault:v1:/) });

    // With partial_failure_response_code 200 the client takes the answer as a success.
    const decrypted = await vault.decryptData({
      name: 'batches',
      partial_failure_response_code: 200,
      batch_input: [
        { ciphertext: results[0]!.ciphertext },
        { ciphertext: 'vault:v1:a.b.c.d.e' },
        { ciphertext: results[2]!.ciphertext },
      ],
    });
    const decryptedResults = decrypted.data.batch_results as { plaintext?: string; error?: string }[];
    expect(text(decryptedResults[0]!.plaintext!)).toBe('one');
    expect(decryptedResults[1]!.error).toEqual(expect.any(String));
    expect(text(decryptedResults[2]!.plaintext!)).toBe('three');

    const allGood = await vault.encryptData({
      name: 'batches',
      batch_input: [{ plaintext: b64('x') }, { plaintext: '' }],
    });
    expect((allGood.data.batch_results as unknown[]).length).toBe(2);
  });

  it('answers a wrong or missing token with Vault-shaped 403 permission denied, never problem+json', async () => {
    const wrong = await failure(
      client('hvs.not-a-kms-credential').encryptData({ name: 'orders', plaintext: b64('x') }),
    );
    expect([wrong.response.statusCode, wrong.response.body]).toEqual([403, { errors: ['permission denied'] }]);
    const forged = await failure(client('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln').transitReadKey({ name: 'orders' }));
    expect(forged.response.statusCode).toBe(403);
    const none = await request(server).get('/v1/transit/keys/orders').ca(rootPem);
    expect([none.status, none.headers['content-type'], none.body]).toEqual([
      403,
      expect.stringMatching(/^application\/json/),
      { errors: ['permission denied'] },
    ]);
  });

  it('applies the native scopes: an API key with kms:encrypt only encrypts, its decrypt is 403', async () => {
    const apiKey = client(`batch.${API_KEY_SECRET}`);
    const sealed = await apiKey.encryptData({ name: 'orders', plaintext: b64('x') });
    expect(sealed.data.key_version).toBe(2);
    const refused = await failure(apiKey.decryptData({ name: 'orders', ciphertext: sealed.data.ciphertext }));
    expect([refused.response.statusCode, refused.response.body]).toEqual([403, { errors: ['permission denied'] }]);
    // Rewrap needs kms:rewrap (implied by kms:write), not decrypt: a reader cannot, a rewrap job can.
    const reader = client(await bearer('kms:decrypt'));
    const rewrap = await failure(reader.rewrapData({ name: 'orders', ciphertext: sealed.data.ciphertext }));
    expect(rewrap.response.statusCode).toBe(403);
    const job = client(await bearer('kms:rewrap'));
    expect((await job.rewrapData({ name: 'orders', ciphertext: sealed.data.ciphertext })).data.key_version).toBe(2);
    // Audited like the native API: one record per call, the refusal with its code.
    await audit.flush();
    const recent = (await audit.list({}, { offset: 0, limit: 1000 })).slice(-4);
    expect(recent.map((record) => [record.event, record.actor, record.outcome, record.reason])).toEqual([
      ['kms.encrypt', 'api-key/batch', 'success', null],
      ['kms.decrypt', 'api-key/batch', 'failure', 'insufficient_scope'],
      ['kms.rewrap', expect.any(String), 'failure', 'insufficient_scope'],
      ['kms.rewrap', expect.any(String), 'success', null],
    ]);
  });

  it('reads bodies as JSON whatever their content type, as Vault does (Go client: none; curl -d: a form type)', async () => {
    const token = await bearer('kms:encrypt');
    const body = JSON.stringify({ plaintext: b64('from the vault CLI') });
    // No Content-Type at all, like Vault's Go client (the vault CLI).
    const bare = await new Promise<{ status: number; json: { data: { ciphertext: string } } }>((resolve, reject) => {
      const { port } = server.address() as AddressInfo;
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          method: 'POST',
          path: '/v1/transit/encrypt/orders',
          ca: rootPem,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }),
          );
        },
      );
      req.on('error', reject);
      req.setHeader('X-Vault-Token', token);
      req.setHeader('Content-Length', Buffer.byteLength(body));
      req.end(body);
    });
    expect(bare.status).toBe(200);
    // `curl -d` sends application/x-www-form-urlencoded; the vault CLI writes with PUT.
    const curl = await request(server)
      .put('/v1/transit/decrypt/orders')
      .ca(rootPem)
      .set('X-Vault-Token', await bearer('kms:decrypt'))
      .type('form')
      .send(JSON.stringify({ ciphertext: bare.json.data.ciphertext }));
    expect([curl.status, text(curl.body.data.plaintext)]).toEqual([200, 'from the vault CLI']);
  });

  it("keeps tenants apart: another tenant's caller does not find the key", async () => {
    const other = client(await bearer('kms:write kms:read', { tenant_id: randomUUID() }));
    const read = await failure(other.transitReadKey({ name: 'orders' }));
    expect([read.response.statusCode, read.response.body]).toEqual([404, { errors: [] }]);
  });

  it('answers unknown keys, types and paths the way Vault does', async () => {
    const read = await failure(vault.transitReadKey({ name: 'no-such-key' }));
    expect([read.response.statusCode, read.response.body]).toEqual([404, { errors: [] }]);
    const encrypt = await failure(vault.encryptData({ name: 'no-such-key', plaintext: b64('x') }));
    expect([encrypt.response.statusCode, encrypt.response.body]).toEqual([
      400,
      { errors: ['encryption key not found'] },
    ]);
    const sign = await failure(vault.write('transit/sign/no-such-key', { input: b64('x') }));
    expect(sign.message).toBe('signing key not found');
    const unknown = await failure(vault.write('transit/keys/odd', { type: 'rot13' }));
    expect([unknown.response.statusCode, unknown.message]).toEqual([400, 'unknown key type rot13']);
    const chacha = await failure(vault.write('transit/keys/odd', { type: 'chacha20-poly1305' }));
    expect(chacha.message).toMatch(/^key type chacha20-poly1305 is not supported/);
    const badName = await failure(vault.write('transit/keys/-odd-', {}));
    expect(badName.message).toMatch(/^invalid key name/);
    const exportable = await failure(vault.write('transit/keys/odd', { type: 'aes256-gcm96', exportable: true }));
    expect(exportable.response.statusCode).toBe(400);
    const path = await failure(vault.write('transit/hmac/orders', { input: b64('x') }));
    expect([path.response.statusCode, path.response.body]).toEqual([404, { errors: ['unsupported path'] }]);
    const wrongUse = await failure(vault.write('transit/sign/orders', { input: b64('x') }));
    expect(wrongUse.response.statusCode).toBe(400);
    const badJson = await request(server)
      .post('/v1/transit/encrypt/orders')
      .ca(rootPem)
      .set('X-Vault-Token', await bearer('kms:encrypt'))
      .type('application/json')
      .send('{"plaintext":');
    expect([badJson.status, Object.keys(badJson.body)]).toEqual([400, ['errors']]);
  });
});

it('maps X-Vault-Token values onto the credentials the KMS accepts', () => {
  expect(authorizationForVaultToken('a.b.c')).toBe('Bearer a.b.c');
  expect(authorizationForVaultToken('batch.secret')).toBe('ApiKey batch.secret');
  expect(authorizationForVaultToken('ops:pass-word')).toBe(`Basic ${b64('ops:pass-word')}`);
  expect(authorizationForVaultToken('ApiKey batch.secret')).toBe('ApiKey batch.secret');
});

it('documents every Vault Transit route in the OpenAPI document, and only those', () => {
  const document = openApiDocument({ version: 'test' }) as {
    paths: Record<string, Record<string, unknown> & { servers?: { url: string }[] }>;
  };
  const documented: [string, string][] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    if (item.servers?.[0]?.url !== '/v1') continue;
    for (const method of Object.keys(item).filter((key) => key === 'get' || key === 'post')) {
      expect((item[method] as { tags: string[] }).tags).toEqual(['Vault Transit compatibility']);
      documented.push([method.toUpperCase(), path.replace(/^\/transit/, '').replace(/\{[^}]+\}/g, 'x')]);
    }
  }
  for (const [method, path] of documented) {
    expect([method, path, VAULT_TRANSIT_ACCESS_RULES.some(([m, p]) => m === method && p.test(path))]).toEqual([
      method,
      path,
      true,
    ]);
  }
  for (const [method, pattern] of VAULT_TRANSIT_ACCESS_RULES) {
    expect([method, String(pattern), documented.some(([m, p]) => m === method && pattern.test(p))]).toEqual([
      method,
      String(pattern),
      true,
    ]);
  }
});
