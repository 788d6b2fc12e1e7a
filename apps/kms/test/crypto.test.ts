import { expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { CompactEncrypt, compactVerify, createLocalJWKSet, importJWK, type JWK } from 'jose';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { JWS_ALGORITHMS, JWE_ENCRYPTIONS, JWE_KEY_MANAGEMENT } from '@cryptoutil/jose-authority';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

/** Every JWS alg, every JWE alg (with A256GCM) and every enc (with dir): each list member of the contract once. */
const ALGORITHMS = [
  ...JWS_ALGORITHMS,
  ...JWE_KEY_MANAGEMENT.map((alg) => `A256GCM/${alg}`),
  ...JWE_ENCRYPTIONS.filter((enc) => enc !== 'A256GCM').map((enc) => `${enc}/dir`),
  'A128CBC-HS256/ECDH-ES+A192KW',
];

async function create(kms: TestKms, algorithm: string, extra: Record<string, unknown> = {}) {
  const res = await kms
    .api('post', '/elastickey')
    .send({ name: uniquePrefix(algorithm), description: '', algorithm, ...extra });
  expect(res.status).toBe(201);
  return `/elastickey/${res.body.elastic_key_id as string}`;
}

const text = (kms: TestKms, path: string, body: string) =>
  kms.api('post', path).set('Content-Type', 'text/plain').send(body);

/** Decrypts through the API and returns the plaintext as UTF-8 (the response is application/octet-stream). */
async function decryptText(kms: TestKms, path: string, jwe: string): Promise<string> {
  const res = await text(kms, path, jwe)
    .buffer(true)
    .parse((response, done) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => done(null, Buffer.concat(chunks)));
    });
  expect(res.status).toBe(200);
  return (res.body as Buffer).toString('utf8');
}

function tamper(compact: string, part: number): string {
  const parts = compact.split('.');
  const raw = Buffer.from(parts[part] ?? '', 'base64url');
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 0x01;
  parts[part] = raw.toString('base64url');
  return parts.join('.');
}

describeEachDatabase('crypto', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });

  it.each(ALGORITHMS)('%s round-trips through the API', async (algorithm) => {
    const path = await create(kms, algorithm);
    if (!algorithm.includes('/')) {
      const signed = await kms
        .api('post', `${path}/sign`)
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from([0, 1, 2, 255]));
      expect(signed.status).toBe(200);
      expect(signed.headers['content-type']).toMatch(/^text\/plain/);
      const verified = await text(kms, `${path}/verify`, signed.text);
      expect(verified.status).toBe(200);
      expect(verified.body).toEqual({
        valid: true,
        kid: expect.any(String),
        payload: Buffer.from([0, 1, 2, 255]).toString('base64url'),
      });
      const bad = await text(kms, `${path}/verify`, tamper(signed.text, 2));
      expect([bad.status, bad.body.code]).toEqual([400, 'signature_invalid']);
      return;
    }
    const jwe = await kms
      .api('post', `${path}/encrypt?context=order-42`)
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.from('secret €'));
    expect(jwe.status).toBe(200);
    expect(jwe.text.split('.')).toHaveLength(5);
    const plain = await text(kms, `${path}/decrypt?context=order-42`, jwe.text).buffer(true);
    expect(plain.status).toBe(200);
    expect(Buffer.from(plain.body as Buffer).toString('utf8')).toBe('secret €');
    const wrongContext = await text(kms, `${path}/decrypt?context=order-43`, jwe.text);
    expect([wrongContext.status, wrongContext.body.code]).toEqual([400, 'invalid_jwe']);
  });

  it('decrypts old ciphertext after a rotation and encrypts with the newest material key', async () => {
    const path = await create(kms, 'A256GCM/A256GCMKW');
    const before = await text(kms, `${path}/encrypt`, 'v1 data');
    const rotated = await kms.api('post', `${path}/materialkey`);
    expect(rotated.status).toBe(201);
    const after = await text(kms, `${path}/encrypt`, 'v2 data');
    const kidOf = (jwe: string) =>
      JSON.parse(Buffer.from(jwe.split('.')[0] ?? '', 'base64url').toString()).kid as string;
    expect(kidOf(after.text)).toBe(rotated.body.material_key_id);
    expect(kidOf(before.text)).not.toBe(rotated.body.material_key_id);
    expect(await decryptText(kms, `${path}/decrypt`, before.text)).toBe('v1 data');
    expect(await decryptText(kms, `${path}/decrypt`, after.text)).toBe('v2 data');
    const revoked = await kms.api('post', `${path}/materialkey/${kidOf(before.text)}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revocation_date).toEqual(expect.any(String));
    const refused = await text(kms, `${path}/decrypt`, before.text);
    expect([refused.status, refused.body.code]).toEqual([409, 'material_key_revoked']);
    expect((await kms.api('post', `${path}/materialkey/${kidOf(before.text)}/revoke`)).status).toBe(409);
  });

  it('refuses truncated, tampered, foreign and wrongly typed JWE input with 4xx problems', async () => {
    const path = await create(kms, 'A256GCM/dir');
    const other = await create(kms, 'A256GCM/dir');
    const jwe = (await text(kms, `${path}/encrypt`, 'data')).text;
    const foreign = (await text(kms, `${other}/encrypt`, 'data')).text;
    const cases: [string, string, number, string][] = [
      ['truncated', jwe.split('.').slice(0, 4).join('.'), 400, 'invalid_jwe'],
      ['tampered ciphertext', tamper(jwe, 3), 400, 'invalid_jwe'],
      ['tampered tag', tamper(jwe, 4), 400, 'invalid_jwe'],
      ['another elastic key', foreign, 400, 'invalid_jwe'],
      ['garbage', 'not a jwe', 400, 'invalid_jwe'],
      [
        'no kid',
        [Buffer.from('{"alg":"dir","enc":"A256GCM"}').toString('base64url'), ...jwe.split('.').slice(1)].join('.'),
        400,
        'invalid_jwe',
      ],
    ];
    for (const [name, body, status, code] of cases) {
      const res = await text(kms, `${path}/decrypt`, body);
      expect([name, res.status, res.body.code]).toEqual([name, status, code]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const json = await kms.api('post', `${path}/decrypt`).send({ jwe });
    expect([json.status, json.body.code]).toEqual([415, 'unsupported_media_type']);
    const noBody = await kms.api('post', `${path}/encrypt`);
    expect(noBody.status).toBe(415);
  });

  it('refuses signing with an encryption key and encrypting with a signing key', async () => {
    const enc = await create(kms, 'A256GCM/dir');
    const sig = await create(kms, 'ES256');
    expect((await text(kms, `${enc}/sign`, 'x')).body.code).toBe('key_usage_mismatch');
    expect((await text(kms, `${sig}/encrypt`, 'x')).body.code).toBe('key_usage_mismatch');
    const jws = (await text(kms, `${sig}/sign`, 'x')).text;
    const otherSig = await create(kms, 'ES256');
    expect((await text(kms, `${otherSig}/verify`, jws)).body.code).toBe('invalid_jws');
    expect((await text(kms, `${sig}/verify`, 'a.b')).body.code).toBe('invalid_jws');
  });

  it('publishes a JWKS that verifies KMS signatures with jose alone', async () => {
    const path = await create(kms, 'ES384');
    await kms.api('post', `${path}/materialkey`);
    const jws = (await text(kms, `${path}/sign`, 'offline check')).text;
    const jwks = await kms.api('get', `${path}/jwks`);
    expect(jwks.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
    const set = JSON.parse(jwks.text) as { keys: JWK[] };
    expect(set.keys).toHaveLength(2);
    for (const key of set.keys) expect(key).not.toHaveProperty('d');
    const { payload } = await compactVerify(jws, createLocalJWKSet(set));
    expect(Buffer.from(payload).toString()).toBe('offline check');
    const symmetric = await create(kms, 'HS256');
    expect(JSON.parse((await kms.api('get', `${symmetric}/jwks`)).text)).toEqual({ keys: [] });
  });

  it.each(['RSA-OAEP-256', 'ECDH-ES'] as const)(
    'decrypts a JWE that jose made with the public key from the JWKS (%s)',
    async (alg) => {
      const path = await create(kms, `A256GCM/${alg}`);
      const [key] = (JSON.parse((await kms.api('get', `${path}/jwks`)).text) as { keys: JWK[] }).keys;
      const jwe = await new CompactEncrypt(new TextEncoder().encode('from a client'))
        .setProtectedHeader({ alg, enc: 'A256GCM', kid: key?.kid })
        .encrypt(await importJWK(key as JWK, alg));
      expect(await decryptText(kms, `${path}/decrypt`, jwe)).toBe('from a client');
    },
  );

  it('generates data keys as JWEs of a fresh JWK under the elastic key', async () => {
    const path = await create(kms, 'A256GCM/A256KW');
    const generated = await kms.api('post', `${path}/generate?alg=AES-256`);
    expect(generated.status).toBe(200);
    const jwk = JSON.parse(await decryptText(kms, `${path}/decrypt`, generated.text)) as JWK;
    expect(jwk).toMatchObject({ kty: 'oct' });
    expect(Buffer.from(String(jwk.k), 'base64url')).toHaveLength(32);
    const ecJwe = (await kms.api('post', `${path}/generate?alg=EC-P256`)).text;
    const ec = JSON.parse(await decryptText(kms, `${path}/decrypt`, ecJwe)) as JWK;
    expect(ec).toMatchObject({ kty: 'EC', crv: 'P-256', d: expect.any(String) });
    expect((await kms.api('post', `${path}/generate?alg=AES-512`)).body.code).toBe('algorithm_unsupported');
    expect((await kms.api('post', `${path}/generate`)).body.code).toBe('invalid_query');
  });

  it('keeps key material out of responses and database columns', async () => {
    const path = await create(kms, 'ES256');
    const body = (await kms.api('get', `${path}/materialkeys`)).body as { items: { clear_public: JWK }[] };
    expect(body.items[0]?.clear_public).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(body.items[0]?.clear_public).not.toHaveProperty('d');
    const rows = await kms.ctx.db.all<Record<string, unknown>>(sql`SELECT * FROM ${kms.ctx.tables.materialKeys}`);
    const barrier = [
      ...(await kms.ctx.db.all<Record<string, unknown>>(sql`SELECT * FROM kms_root_key_wraps`)),
      ...(await kms.ctx.db.all<Record<string, unknown>>(sql`SELECT * FROM kms_intermediate_keys`)),
      ...(await kms.ctx.db.all<Record<string, unknown>>(sql`SELECT * FROM kms_content_keys`)),
    ];
    for (const row of [...rows, ...barrier]) {
      for (const value of Object.values(row)) {
        expect(String(value)).not.toMatch(/"(d|k|p|q)"\s*:/);
      }
    }
  });
});
