/**
 * BYOK (kms.md "Import with wrapping"): the tenant's RSA-4096 import wrapping key, keys imported wrapped
 * to it (made and checked outside the KMS), the refusal of clear private keys, and public-only versions.
 */
import { expect, it } from '@jest/globals';
import { createDecipheriv, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { CompactEncrypt, CompactSign, compactDecrypt, compactVerify, importJWK, type JWK } from 'jose';
import type { Database } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

const generatePair = promisify(generateKeyPair);

async function ecPair(): Promise<{ privateJwk: JWK; publicJwk: JWK; publicKey: KeyObject }> {
  const { privateKey, publicKey } = await generatePair('ec', { namedCurve: 'P-256' });
  return {
    privateJwk: privateKey.export({ format: 'jwk' }) as JWK,
    publicJwk: publicKey.export({ format: 'jwk' }) as JWK,
    publicKey,
  };
}

async function rsaPair(): Promise<{ privateJwk: JWK; publicJwk: JWK; publicKey: KeyObject }> {
  const { privateKey, publicKey } = await generatePair('rsa', { modulusLength: 2048 });
  return {
    privateJwk: privateKey.export({ format: 'jwk' }) as JWK,
    publicJwk: publicKey.export({ format: 'jwk' }) as JWK,
    publicKey,
  };
}

/** Wraps a JWK to a public RSA JWK the way a BYOK client does (any JOSE library would do). */
async function wrap(jwk: unknown, to: JWK, header: { alg?: string; enc?: string; kid?: string } = {}): Promise<string> {
  const alg = header.alg ?? 'RSA-OAEP-256';
  const plaintext = typeof jwk === 'string' ? jwk : JSON.stringify(jwk);
  return new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg, enc: header.enc ?? 'A256GCM', kid: header.kid ?? String(to.kid) })
    .encrypt(await importJWK(to, alg));
}

/** Every text of every row in the KMS's own tables and in one tenant's schema. */
async function everyStoredText(db: Database, tenantSchema: string): Promise<string> {
  const tables =
    db.dialect === 'postgres'
      ? (
          await db.all<{ s: string; t: string }>(sql`SELECT table_schema AS s, table_name AS t
            FROM information_schema.tables WHERE table_type = 'BASE TABLE'
            AND table_schema IN (current_schema(), ${tenantSchema})`)
        ).map((row) => `"${row.s}"."${row.t}"`)
      : [
          ...(await db.all<{ name: string }>(sql`SELECT name FROM main.sqlite_master WHERE type = 'table'`)).map(
            (row) => `main."${row.name}"`,
          ),
          ...(
            await db.all<{ name: string }>(
              sql.raw(`SELECT name FROM "${tenantSchema}".sqlite_master WHERE type = 'table'`),
            )
          ).map((row) => `"${tenantSchema}"."${row.name}"`),
        ];
  expect(tables.some((table) => table.includes('kms_import_wrapping_keys'))).toBe(true);
  const texts: string[] = [];
  for (const table of tables) texts.push(JSON.stringify(await db.all(sql.raw(`SELECT * FROM ${table}`))));
  return texts.join('\n');
}

function aesGcmDecrypt(jwe: string, key: Buffer): string {
  const [header = '', encryptedKey, iv = '', ciphertext = '', tag = ''] = jwe.split('.');
  expect(encryptedKey).toBe('');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(header, 'ascii'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

describeEachDatabase('import with wrapping (BYOK)', (db) => {
  let kms: TestKms;
  let opened: Database;
  let wrappingKey: JWK;

  const create = async (algorithm: string, importAllowed = true) => {
    const res = await kms
      .api('post', '/elastickey')
      .send({ name: uniquePrefix('byok'), description: '', algorithm, import_allowed: importAllowed });
    expect(res.status).toBe(201);
    return String(res.body.elastic_key_id);
  };
  const importKey = (id: string, body: unknown) =>
    kms.api('post', `/elastickey/${id}/materialkey`).send(body as object);
  const send = (id: string, operation: string, body: string) =>
    kms.api('post', `/elastickey/${id}/${operation}`).set('Content-Type', 'text/plain').send(body);

  beforeAll(async () => {
    opened = await db.open(KMS_MIGRATIONS);
    kms = await startTestKms(opened);
  });

  it('makes one RSA-4096 wrapping key per tenant, even for concurrent first requests on two instances', async () => {
    const other = await startTestKms(opened);
    const id = await create('ES256');
    const responses = await Promise.all([
      kms.api('get', `/elastickey/${id}/wrappingkey`),
      kms.api('get', `/elastickey/${id}/wrappingkey`),
      other.api('get', `/elastickey/${id}/wrappingkey`),
      other.api('get', `/elastickey/${id}/wrappingkey`),
    ]);
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/jwk\+json/);
    }
    const keys = responses.map((res) => JSON.parse(res.text) as JWK);
    wrappingKey = keys[0] as JWK;
    expect(Object.keys(wrappingKey).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(wrappingKey).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256', use: 'enc', e: 'AQAB' });
    expect(Buffer.from(String(wrappingKey.n), 'base64url').length * 8).toBe(4096);
    for (const key of keys) expect(key).toEqual(wrappingKey);
    const rows = await kms.ctx.db.all(sql`SELECT id FROM ${kms.ctx.tables.importWrappingKeys}`);
    expect(rows).toEqual([{ id: wrappingKey.kid }]);
    // The same key for every elastic key of the tenant; none for a key that does not import.
    const second = await kms.api('get', `/elastickey/${await create('A256GCM/dir')}/wrappingkey`);
    expect(JSON.parse(second.text)).toEqual(wrappingKey);
    const closed = await kms.api('get', `/elastickey/${await create('ES256', false)}/wrappingkey`);
    expect([closed.status, closed.body.code]).toEqual([403, 'import_not_allowed']);
    const missing = await kms.api('get', '/elastickey/0190a8c2-0000-7000-8000-000000000000/wrappingkey');
    expect([missing.status, missing.body.code]).toEqual([404, 'elastic_key_not_found']);
  });

  it('never stores the private part of the wrapping key in clear', async () => {
    const [row] = await kms.ctx.db.all<{ jwe: string; clear_public: string }>(
      sql`SELECT jwe, clear_public FROM ${kms.ctx.tables.importWrappingKeys}`,
    );
    expect(row).toBeDefined();
    const { jwe, clear_public: clearPublic } = row as { jwe: string; clear_public: string };
    expect(JSON.parse(clearPublic)).toEqual(wrappingKey);
    const unwrapped = await kms.service.barrier.unwrap(String(wrappingKey.kid), jwe);
    expect(unwrapped.n).toBe(wrappingKey.n);
    const secrets = [unwrapped.d, unwrapped.p, unwrapped.q, unwrapped.dp, unwrapped.dq, unwrapped.qi].map(String);
    expect(secrets.every((secret) => secret.length > 100)).toBe(true);
    const stored = await everyStoredText(opened, kms.ctx.tables.schema);
    expect(stored).toContain(String(wrappingKey.n));
    for (const secret of secrets) expect(stored).not.toContain(secret);
  });

  it('imports a wrapped EC key: the KMS signs, the original public key verifies outside', async () => {
    const id = await create('ES256');
    const { privateJwk, publicJwk, publicKey } = await ecPair();
    const imported = await importKey(id, { jwe: await wrap(privateJwk, wrappingKey) });
    expect(imported.status).toBe(201);
    expect(imported.body).toMatchObject({ public_only: false, generate_date: null, import_date: expect.any(String) });
    expect(imported.body.clear_public).toEqual({
      ...publicJwk,
      kid: imported.body.material_key_id,
      alg: 'ES256',
      use: 'sig',
    });
    expect(JSON.stringify(imported.body)).not.toContain(String(privateJwk.d));
    const jws = await send(id, 'sign', 'signed inside');
    expect(jws.status).toBe(200);
    const verified = await compactVerify(jws.text, publicKey, { algorithms: ['ES256'] });
    expect(new TextDecoder().decode(verified.payload)).toBe('signed inside');
    expect(verified.protectedHeader.kid).toBe(imported.body.material_key_id);
  });

  it('imports a wrapped RSA key: the KMS signs RS256, the original public key verifies outside', async () => {
    const id = await create('RS256');
    const { privateJwk, publicKey } = await rsaPair();
    const imported = await importKey(id, { jwe: await wrap(privateJwk, wrappingKey) });
    expect(imported.status).toBe(201);
    const jws = await send(id, 'sign', 'rsa inside');
    const verified = await compactVerify(jws.text, publicKey, { algorithms: ['RS256'] });
    expect(new TextDecoder().decode(verified.payload)).toBe('rsa inside');
  });

  it('imports a wrapped AES key: a JWE the KMS makes decrypts outside with hand-written AES-GCM', async () => {
    const id = await create('A256GCM/dir');
    const aes = randomBytes(32);
    const imported = await importKey(id, {
      jwe: await wrap({ kty: 'oct', k: aes.toString('base64url') }, wrappingKey),
    });
    expect([imported.status, imported.body.clear_public, imported.body.public_only]).toEqual([201, null, false]);
    const jwe = await send(id, 'encrypt', 'sealed inside');
    expect(jwe.status).toBe(200);
    expect(aesGcmDecrypt(jwe.text, aes)).toBe('sealed inside');
    const decrypted = await send(id, 'decrypt', jwe.text).buffer(true);
    expect(Buffer.from(decrypted.body as Buffer).toString('utf8')).toBe('sealed inside');
  });

  it('refuses wrapped keys with the wrong algorithms, for another wrapping key, altered, or not a fitting JWK', async () => {
    const id = await create('ES256');
    const { privateJwk, publicJwk } = await ecPair();
    const stranger = (await rsaPair()).publicJwk;
    const otherEc = (await ecPair()).publicJwk;
    const good = await wrap(privateJwk, wrappingKey);
    const [header = '', key = '', iv = '', ciphertext = '', tag = ''] = good.split('.');
    const flipped = Buffer.from(ciphertext, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const cases: [body: unknown, code: string][] = [
      [{ jwe: await wrap(privateJwk, wrappingKey, { alg: 'RSA-OAEP' }) }, 'wrapped_key_algorithm_unsupported'],
      [{ jwe: await wrap(privateJwk, wrappingKey, { enc: 'A128GCM' }) }, 'wrapped_key_algorithm_unsupported'],
      [{ jwe: await wrap(privateJwk, { ...stranger, kid: 'someone-else' }) }, 'wrapping_key_unknown'],
      [{ jwe: await wrap(privateJwk, wrappingKey, { kid: '' }) }, 'wrapping_key_unknown'],
      [{ jwe: await wrap(privateJwk, { ...stranger, kid: wrappingKey.kid }) }, 'wrapped_key_invalid'],
      [{ jwe: [header, key, iv, flipped.toString('base64url'), tag].join('.') }, 'wrapped_key_invalid'],
      [{ jwe: await wrap('not json', wrappingKey) }, 'wrapped_key_invalid'],
      [{ jwe: 'not.a.jwe' }, 'invalid_jwe'],
      [{ jwe: await wrap(publicJwk, wrappingKey) }, 'invalid_jwk'],
      // Another key's public point next to this private scalar: the KMS would publish a key that does not verify.
      [{ jwe: await wrap({ ...privateJwk, x: otherEc.x, y: otherEc.y }, wrappingKey) }, 'invalid_jwk'],
      [{ jwe: await wrap({ kty: 'oct', k: randomBytes(32).toString('base64url') }, wrappingKey) }, 'invalid_jwk'],
      [{ jwe: good, jwk: publicJwk }, 'invalid_body'],
      [{}, 'invalid_body'],
    ];
    for (const [body, code] of cases) {
      const res = await importKey(id, body);
      expect([res.status, res.body.code]).toEqual([400, code]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.text).not.toContain(String(privateJwk.d));
    }
    expect((await kms.api('get', `/elastickey/${id}`)).body.material_key_count).toBe(0);
    const closed = await create('ES256', false);
    const forbidden = await importKey(closed, { jwe: good });
    expect([forbidden.status, forbidden.body.code]).toEqual([403, 'import_not_allowed']);
    expect((await importKey(id, { jwe: good })).status).toBe(201);
  });

  it('refuses a clear-text private or secret JWK and says to wrap it', async () => {
    const ec = await create('ES256');
    const aes = await create('A256GCM/A256KW');
    for (const [id, jwk] of [
      [ec, (await ecPair()).privateJwk],
      [ec, { ...(await ecPair()).publicJwk, d: 'AAAA' }],
      [aes, { kty: 'oct', k: randomBytes(32).toString('base64url') }],
    ] as const) {
      const res = await importKey(id, { jwk });
      expect([res.status, res.body.code]).toEqual([400, 'clear_key_import_refused']);
      expect(res.body.detail).toMatch(/wrappingkey/);
    }
  });

  it('imports a public key alone: verify and encrypt work, sign and decrypt are 409 material_key_public_only', async () => {
    // Signing: the latest version is public-only, so sign refuses instead of falling back to the older one.
    const signing = await create('ES256');
    const older = await ecPair();
    const wrapped = await importKey(signing, { jwe: await wrap(older.privateJwk, wrappingKey) });
    const olderJws = await send(signing, 'sign', 'made before');
    const { privateJwk, publicJwk } = await ecPair();
    const imported = await importKey(signing, { jwk: { ...publicJwk, kid: 'theirs', alg: 'ES256' } });
    expect(imported.status).toBe(201);
    const materialKeyId = String(imported.body.material_key_id);
    expect(imported.body).toMatchObject({ public_only: true, import_date: expect.any(String) });
    expect(imported.body.clear_public).toEqual({ ...publicJwk, kid: materialKeyId, alg: 'ES256', use: 'sig' });
    const got = await kms.api('get', `/elastickey/${signing}/materialkey/${materialKeyId}`);
    expect(got.body.public_only).toBe(true);
    const listed = await kms.api('get', `/elastickey/${signing}/materialkeys`);
    expect(listed.body.items.map((m: { public_only: boolean }) => m.public_only)).toEqual([false, true]);
    const jwks = JSON.parse((await kms.api('get', `/elastickey/${signing}/jwks`)).text) as { keys: JWK[] };
    expect(jwks.keys.map((key) => key.kid)).toEqual([wrapped.body.material_key_id, materialKeyId]);
    const outside = await new CompactSign(new TextEncoder().encode('signed outside'))
      .setProtectedHeader({ alg: 'ES256', kid: materialKeyId })
      .sign(await importJWK(privateJwk, 'ES256'));
    const verified = await send(signing, 'verify', outside);
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ valid: true, kid: materialKeyId });
    expect(Buffer.from(String(verified.body.payload), 'base64url').toString()).toBe('signed outside');
    expect((await send(signing, 'verify', olderJws.text)).body.valid).toBe(true);
    const sign = await send(signing, 'sign', 'x');
    expect([sign.status, sign.body.code]).toEqual([409, 'material_key_public_only']);

    // Encryption: RSA-OAEP-256 to the public-only version, decrypted outside with the private key.
    const encrypting = await create('A256GCM/RSA-OAEP-256');
    const rsa = await rsaPair();
    const rsaImported = await importKey(encrypting, { jwk: rsa.publicJwk });
    expect([rsaImported.status, rsaImported.body.public_only]).toEqual([201, true]);
    const jwe = await kms
      .api('post', `/elastickey/${encrypting}/encrypt?context=byok`)
      .set('Content-Type', 'text/plain')
      .send('sealed inside');
    expect(jwe.status).toBe(200);
    const opened = await compactDecrypt(jwe.text, await importJWK(rsa.privateJwk, 'RSA-OAEP-256'));
    expect(new TextDecoder().decode(opened.plaintext)).toBe('sealed inside');
    expect(opened.protectedHeader).toMatchObject({ kid: rsaImported.body.material_key_id, ctx: 'byok' });
    const decrypt = await kms
      .api('post', `/elastickey/${encrypting}/decrypt?context=byok`)
      .set('Content-Type', 'text/plain')
      .send(jwe.text);
    expect([decrypt.status, decrypt.body.code]).toEqual([409, 'material_key_public_only']);
    const dataKey = await kms.api('post', `/elastickey/${encrypting}/generate?alg=AES-256`);
    expect(dataKey.status).toBe(200);
    const unwrappedDataKey = await compactDecrypt(dataKey.text, await importJWK(rsa.privateJwk, 'RSA-OAEP-256'));
    expect(JSON.parse(new TextDecoder().decode(unwrappedDataKey.plaintext))).toMatchObject({ kty: 'oct' });

    // A public key cannot stand in for a symmetric algorithm.
    const wrongShape = await importKey(encrypting, { jwk: publicJwk });
    expect([wrongShape.status, wrongShape.body.code]).toEqual([400, 'invalid_jwk']);
  });
});
