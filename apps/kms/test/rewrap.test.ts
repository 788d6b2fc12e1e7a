import { beforeAll, expect, it } from '@jest/globals';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { startTestKms, type TestKms } from './harness.js';

const header = (jwe: string) =>
  JSON.parse(Buffer.from(jwe.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;

function tamper(compact: string, part: number): string {
  const parts = compact.split('.');
  const raw = Buffer.from(parts[part] ?? '', 'base64url');
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 0x01;
  parts[part] = raw.toString('base64url');
  return parts.join('.');
}

describeEachDatabase('rewrap', (db) => {
  let kms: TestKms;
  beforeAll(async () => {
    kms = await startTestKms(await db.open(KMS_MIGRATIONS));
  });

  const text = (path: string, body: string) => kms.api('post', path).type('text/plain').send(body);
  const create = async (algorithm: string) => {
    const res = await kms.api('post', '/elastickey').send({ name: uniquePrefix('rewrap'), description: '', algorithm });
    expect(res.status).toBe(201);
    return `/elastickey/${String(res.body.elastic_key_id)}`;
  };
  const decrypted = async (path: string, jwe: string) => {
    const res = await text(path, jwe).buffer(true);
    expect(res.status).toBe(200);
    return Buffer.from(res.body as Buffer).toString('utf8');
  };

  it.each(['A256GCM/dir', 'A256GCM/A256KW', 'A128CBC-HS256/RSA-OAEP-256', 'A256GCM/ECDH-ES'])(
    '%s: a JWE made before two rotations comes back made with the newest version, same plaintext and context',
    async (algorithm) => {
      const path = await create(algorithm);
      const old = await text(`${path}/encrypt?context=invoice-7`, 'rotate me €');
      expect(old.status).toBe(200);
      await kms.api('post', `${path}/materialkey`);
      const latest = await kms.api('post', `${path}/materialkey`);
      expect(latest.status).toBe(201);
      const rewrapped = await text(`${path}/rewrap?context=invoice-7`, old.text);
      expect(rewrapped.status).toBe(200);
      expect(rewrapped.headers['content-type']).toMatch(/^text\/plain/);
      expect(header(old.text).kid).not.toBe(latest.body.material_key_id);
      expect(header(rewrapped.text)).toMatchObject({ kid: latest.body.material_key_id, ctx: 'invoice-7' });
      expect(await decrypted(`${path}/decrypt?context=invoice-7`, rewrapped.text)).toBe('rotate me €');
      // The old JWE still decrypts too: a rewrap changes nothing stored.
      expect(await decrypted(`${path}/decrypt?context=invoice-7`, old.text)).toBe('rotate me €');
    },
  );

  it('keeps the content type of a data key, so the rewrapped JWE still says it holds a JWK', async () => {
    const path = await create('A256GCM/A256KW');
    const generated = await kms.api('post', `${path}/generate?alg=AES-256`);
    await kms.api('post', `${path}/materialkey`);
    const rewrapped = await text(`${path}/rewrap`, generated.text);
    expect(header(rewrapped.text).cty).toBe('jwk+json');
    expect(await decrypted(`${path}/decrypt`, rewrapped.text)).toBe(await decrypted(`${path}/decrypt`, generated.text));
  });

  it('refuses a wrong or missing context, a tampered or foreign JWE and a revoked version, with problems', async () => {
    const path = await create('A256GCM/dir');
    const other = await create('A256GCM/dir');
    const jwe = (await text(`${path}/encrypt?context=order-1`, 'data')).text;
    const cases: [string, string, number, string][] = [
      ['wrong context', `${path}/rewrap?context=order-2`, 400, 'invalid_jwe'],
      ['no context', `${path}/rewrap`, 400, 'invalid_jwe'],
      ['another elastic key', `${other}/rewrap?context=order-1`, 400, 'invalid_jwe'],
    ];
    for (const [name, url, status, code] of cases) {
      const res = await text(url, jwe);
      expect([name, res.status, res.body.code]).toEqual([name, status, code]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const tampered = await text(`${path}/rewrap?context=order-1`, tamper(jwe, 4));
    expect([tampered.status, tampered.body.code]).toEqual([400, 'invalid_jwe']);
    const json = await kms.api('post', `${path}/rewrap`).send({ jwe });
    expect([json.status, json.body.code]).toEqual([415, 'unsupported_media_type']);
    await kms.api('post', `${path}/materialkey`);
    expect((await kms.api('post', `${path}/materialkey/${String(header(jwe).kid)}/revoke`)).status).toBe(200);
    const revoked = await text(`${path}/rewrap?context=order-1`, jwe);
    expect([revoked.status, revoked.body.code]).toEqual([409, 'material_key_revoked']);
  });

  it('refuses signing keys and keys that are not active', async () => {
    const signing = await create('ES256');
    const res = await text(`${signing}/rewrap`, 'a.b.c.d.e');
    expect([res.status, res.body.code]).toEqual([400, 'key_usage_mismatch']);
    const path = await create('A256GCM/dir');
    const jwe = (await text(`${path}/encrypt`, 'data')).text;
    expect((await kms.api('post', `${path}/disable`)).status).toBe(200);
    const disabled = await text(`${path}/rewrap`, jwe);
    expect([disabled.status, disabled.body.code]).toEqual([409, 'elastic_key_not_active']);
    const missing = await text('/elastickey/01a20f00-0000-7000-8000-00000000dead/rewrap', jwe);
    expect([missing.status, missing.body.code]).toEqual([404, 'elastic_key_not_found']);
  });
});
