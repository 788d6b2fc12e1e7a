/**
 * Hostile input (issue #10): every operation of the OpenAPI document, fed generated garbage (fast-check)
 * and a corpus of known attacks (malformed and deeply nested JSON, huge and invalid-UTF-8 bodies, wrong
 * content types, duplicated parameters, SQL/HTML/path-traversal strings, truncated, tampered and re-ordered
 * JWE/JWS, `alg: none`, HS256 signed with the public key, `crit`, PBES2 with a huge `p2c`, `zip`), with
 * valid, missing and forged credentials. Every answer is a problem+json 4xx (or a 2xx where the input is
 * legitimately acceptable, e.g. any bytes are a plaintext), never 5xx, never slower than a second, and the
 * keys in the database are unchanged.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { SignJWT, base64url, generateKeyPair } from 'jose';
import { hashPassword } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { TokenValidator } from '@cryptoutil/jose-authority';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import { accessControl } from '../src/api/access.js';
import { AUTH_METHODS, createAuthenticator } from '../src/api/authentication.js';
import { openApiDocument } from '../src/api/openapi.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

const AUDIENCE = 'https://kms.hostile.test';
const API_KEY_SECRET = 'hostile-api-key-secret-0123456789';
const CRYPTO_SCOPES = 'kms:read kms:encrypt kms:decrypt kms:sign kms:verify kms:generate';
const issuer = new FakeIssuer();
let apiKeyHash: string;

beforeAll(async () => {
  apiKeyHash = await hashPassword(API_KEY_SECRET, 1000);
  await issuer.start();
  await issuer.addKey('hostile-key-1');
  issuer.audience = AUDIENCE;
});
afterAll(async () => issuer.stop());

const b64 = (value: unknown) => base64url.encode(typeof value === 'string' ? value : JSON.stringify(value));

/** Strings that have broken other servers: injection, traversal, markup, control and odd Unicode. */
const NASTY = [
  "' OR 1=1 --",
  '"; DROP TABLE kms_elastic_keys; --',
  '../../../../etc/passwd',
  '..%2f..%2f..%2fetc%2fpasswd',
  '%00',
  '\u0000\u0001\u001f',
  '<script>alert(1)</script>',
  '{{7*7}}${7*7}',
  '\ud800',
  '\u202e\u2066',
  'A'.repeat(10_000),
  '-1',
  '1e309',
  'NaN',
  '__proto__',
  'constructor',
];

/** The operations of the OpenAPI document, as (method, path template). */
function operations(): [string, string][] {
  const doc = openApiDocument({ version: 'test' }) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((method) => ['get', 'post', 'put', 'delete', 'patch'].includes(method))
      .map((method): [string, string] => [method, path]),
  );
}

describeEachDatabase('hostile input to every KMS operation', (db) => {
  let kms: TestKms;
  const ids: Record<'enc' | 'sign' | 'encMaterial', string> = { enc: '', sign: '', encMaterial: '' };
  let samples: { jwe: string; jws: string };
  let tokens: { admin: string; crypto: string; forged: string[] };

  /** What the database holds about keys: must be identical before and after the barrage. */
  const keyState = async () => {
    const { elasticKeys, materialKeys } = kms.ctx.tables;
    const keys = await kms.ctx.db.all(sql`SELECT id, name, description, status FROM ${elasticKeys} ORDER BY id`);
    const materials = await kms.ctx.db.all(
      sql`SELECT id, elastic_key_id, revocation_date FROM ${materialKeys} ORDER BY id`,
    );
    return JSON.stringify({ keys, materials });
  };

  beforeAll(async () => {
    const opened = await db.open(KMS_MIGRATIONS);
    const validator = new TokenValidator({
      issuer: issuer.url,
      audience: AUDIENCE,
      revocation: { auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 'kms-secret-0123456789' } },
    });
    const realms = buildRealms(realmFileSchema.parse({ version: 1, realms: [] }), { demo: false });
    const authenticate = createAuthenticator({
      methods: AUTH_METHODS,
      validator,
      login: createPasswordLogin({ realms, db: opened, lockout: { maxFailures: 3, lockoutMs: 60_000 } }),
      apiKeys: [{ id: 'hostile', keyHash: apiKeyHash, scopes: ['kms:encrypt', 'kms:decrypt'] }],
      certificates: [],
    });
    kms = await startTestKms(opened, {
      access: accessControl({ authenticate, realm: 'kms', otherSchemes: ['Basic', 'ApiKey'] }),
    });
    const admin = await issuer.token({ scope: 'kms:admin' });
    const crypto = await issuer.token({ scope: CRYPTO_SCOPES });
    const create = async (algorithm: string) => {
      const res = await kms
        .api('post', '/elastickey')
        .set('Authorization', `Bearer ${admin}`)
        .send({ name: uniquePrefix('hostile'), description: 'target', algorithm });
      expect(res.status).toBe(201);
      return String(res.body.elastic_key_id);
    };
    ids.enc = await create('A256GCM/A256KW');
    ids.sign = await create('ES256');
    const materials = await kms
      .api('get', `/elastickey/${ids.enc}/materialkeys`)
      .set('Authorization', `Bearer ${admin}`);
    ids.encMaterial = String(materials.body.items[0].material_key_id);
    const encrypt = await kms
      .api('post', `/elastickey/${ids.enc}/encrypt`)
      .set('Authorization', `Bearer ${crypto}`)
      .type('text/plain')
      .send('the plaintext');
    const sign = await kms
      .api('post', `/elastickey/${ids.sign}/sign`)
      .set('Authorization', `Bearer ${crypto}`)
      .type('text/plain')
      .send('the payload');
    samples = { jwe: encrypt.text, jws: sign.text };

    // Tokens an attacker could make: no signature, HS256 keyed with the public JWK, unknown critical
    // headers, a foreign key, an expired one, and plain garbage.
    const [, payload] = crypto.split('.');
    const publicJwk = issuer.keys[0]!.publicJwk;
    const hs256 = await new SignJWT(
      JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>,
    )
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: publicJwk.kid! })
      .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    const { privateKey } = await generateKeyPair('ES256'); // a forger's key, not published by the issuer
    const foreign = await new SignJWT({ scope: 'kms:admin', client_id: 'mallory' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: publicJwk.kid! })
      .setIssuer(issuer.url)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(privateKey);
    tokens = {
      admin,
      crypto,
      forged: [
        `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`,
        hs256,
        `${b64({ alg: 'ES256', typ: 'at+jwt', kid: publicJwk.kid, crit: ['exp-check'], 'exp-check': false })}.${crypto.split('.').slice(1).join('.')}`,
        foreign,
        await issuer.token({ scope: 'kms:admin', exp: Math.floor(Date.now() / 1000) - 3600 }),
        crypto.split('.').reverse().join('.'),
        'not-a-token',
        'e30.e30.e30',
        'A'.repeat(100_000),
      ],
    };
  });

  /** JOSE input derived from real outputs: truncated, tampered, re-ordered, or with a hostile header. */
  const joseVariants = (): string[] => {
    const { jwe, jws } = samples;
    const jweParts = jwe.split('.');
    const jwsParts = jws.split('.');
    const withHeader = (parts: string[], header: Record<string, unknown>) => [b64(header), ...parts.slice(1)].join('.');
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    return [
      jweParts.slice(0, 4).join('.'),
      [jweParts[0], jweParts[3], jweParts[2], jweParts[1], jweParts[4]].join('.'),
      flip(jwe, jwe.length - 5),
      flip(jwe, jweParts[0]!.length + jweParts[1]!.length + 10),
      withHeader(jweParts, { alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', p2c: 2_000_000_000, p2s: 'c2FsdHNhbHQ' }),
      withHeader(jweParts, { alg: 'A256KW', enc: 'A256GCM', zip: 'DEF', kid: ids.encMaterial }),
      withHeader(jweParts, { alg: 'A256KW', enc: 'A256GCM', crit: ['b64'], b64: false, kid: ids.encMaterial }),
      withHeader(jweParts, { alg: 'dir', enc: 'A256GCM', kid: ids.encMaterial }),
      `${jwe}.${jwe}`,
      jwsParts.slice(0, 2).join('.'),
      withHeader(jwsParts, { alg: 'none' }),
      withHeader(jwsParts, { alg: 'HS256', kid: jwsParts[0] }),
      withHeader(jwsParts, { alg: 'ES256', crit: ['unknown-extension'], 'unknown-extension': 1 }),
      flip(jws, jws.length - 3),
      [jwsParts[1], jwsParts[0], jwsParts[2]].join('.'),
    ];
  };

  it('refuses text with NUL characters (PostgreSQL cannot hold them) with a 4xx problem, never a 500', async () => {
    const nulUser = `Basic ${Buffer.from('nul\u0000user:password').toString('base64')}`;
    const answers = [
      await kms.api('get', '/elastickeys').set('Authorization', nulUser),
      await kms.api('get', '/elastickeys?name=%00').set('Authorization', `Bearer ${tokens.crypto}`),
      await kms
        .api('post', '/elastickey')
        .set('Authorization', `Bearer ${tokens.admin}`)
        .send({ name: 'nul\u0000name', description: '', algorithm: 'A256GCM/dir' }),
    ];
    for (const res of answers) {
      expect([res.status >= 400 && res.status < 500, res.headers['content-type']]).toEqual([
        true,
        expect.stringMatching(/^application\/problem\+json/),
      ]);
    }
  });

  it('answers every operation with a 4xx problem (or a legitimate 2xx), within a second, changing no key', async () => {
    const before = await keyState();
    const ops = operations();
    expect(ops.length).toBeGreaterThan(15);
    const corpus = joseVariants();
    const unknownId = '0190ffff-ffff-7fff-bfff-ffffffffffff';
    const idArb = fc.constantFrom(
      ids.enc,
      ids.sign,
      unknownId,
      ...NASTY.slice(0, 8).map(encodeURIComponent),
      '%2e%2e%2f%2e%2e%2f',
      '%ff%fe',
    );
    const body = fc.oneof(
      fc.constantFrom<string | Buffer | undefined>(...corpus, ...NASTY, undefined),
      fc.string({ maxLength: 300, unit: 'binary' }),
      fc.json({ maxDepth: 4 }),
      fc.integer({ min: 1_000, max: 200_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
      fc.integer({ min: 1_000, max: 50_000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => Buffer.from([0xc0, 0xff, ...bytes])),
      fc.constant(Buffer.alloc(2 * 1024 * 1024, 0x61)),
      fc.record(
        {
          name: fc.constantFrom(...NASTY),
          description: fc.constantFrom(...NASTY),
          algorithm: fc.constantFrom(...NASTY, 'A256GCM/none', 'none', 'HS256'),
          jwk: fc.constantFrom<unknown>({ kty: 'oct', k: 'AAAA' }, { kty: 'EC', crv: 'P-256', d: 'x' }, NASTY[0]),
        },
        { requiredKeys: [] },
      ),
    );
    const contentType = fc.constantFrom(
      'application/json',
      'text/plain',
      'application/jose',
      'application/octet-stream',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'text/html',
      undefined,
    );
    const query = fc.array(
      fc.tuple(
        fc.constantFrom(
          'size',
          'page',
          'sort',
          'context',
          'alg',
          'name',
          'status',
          'material_key_id',
          'min_generate_date',
        ),
        fc.constantFrom('1', '-1', '0', '99999999999999999999', ...NASTY.slice(0, 8)),
      ),
      { maxLength: 4 },
    );
    const auth = fc.oneof(
      fc.constantFrom(
        undefined,
        `Bearer ${tokens.crypto}`,
        `ApiKey hostile.${API_KEY_SECRET}`,
        'ApiKey hostile.wrong-secret',
        'Basic !!!not-base64!!!',
        'Bearer',
        'Negotiate abc',
      ),
      fc.constantFrom(...tokens.forged).map((token) => `Bearer ${token}`),
      // An administrator sending garbage: only to ids that do not exist, so nothing may change.
      fc.constant(`admin:Bearer ${tokens.admin}`),
    );

    const problems: string[] = [];
    // Printed with any failure, so `FAST_CHECK_SEED=<seed>` replays the same requests.
    const seed = Number(process.env.FAST_CHECK_SEED ?? Date.now() % 2 ** 31);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ops),
        idArb,
        body,
        contentType,
        query,
        auth,
        async ([method, template], id, payload, type, params, authorization) => {
          const admin = authorization?.startsWith('admin:');
          const path = template
            .replace('{id}', admin ? unknownId : id)
            .replace('{mkid}', admin || id !== ids.enc ? unknownId : ids.encMaterial);
          const search = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
          let call = kms.api(method as 'get', `${path}${search ? `?${search}` : ''}`);
          if (authorization) call = call.set('Authorization', authorization.replace(/^admin:/, ''));
          if (type) call = call.set('Content-Type', type);
          // Bytes go out as they are (superagent would otherwise re-encode them for JSON and form types).
          call = call.serialize((data: unknown) => data as string);
          const started = Date.now();
          const oversized = Buffer.isBuffer(payload) && payload.length > 1024 * 1024;
          let res: Awaited<typeof call>;
          try {
            res =
              payload === undefined || method === 'get'
                ? await call
                : await call.send(
                    typeof payload === 'object' && !Buffer.isBuffer(payload) ? JSON.stringify(payload) : payload,
                  );
          } catch (error) {
            // Over the body limit the server answers 413 and closes while a naive client is still writing.
            const code = (error as NodeJS.ErrnoException).code;
            if (oversized && (code === 'ECONNRESET' || code === 'EPIPE')) return true;
            throw error;
          }
          const elapsed = Date.now() - started;
          const where = `${method.toUpperCase()} ${template} (${authorization?.slice(0, 20)}, ${type}) → ${res.status}`;
          if (res.status >= 500) problems.push(`${where}: ${res.text.slice(0, 200)}`);
          if (elapsed > 1000) problems.push(`${where}: took ${elapsed} ms`);
          if (res.status >= 400) {
            if (!String(res.headers['content-type']).startsWith('application/problem+json'))
              problems.push(`${where}: not problem+json`);
            else if (typeof res.body.code !== 'string') problems.push(`${where}: problem without a code`);
            if (/\n\s+at |node_modules|SELECT |sqlite|postgres/i.test(res.text))
              problems.push(`${where}: leaks internals`);
          }
          return true;
        },
      ),
      { numRuns: 400, seed },
    );
    expect({ seed, problems }).toEqual({ seed, problems: [] });
    expect(await keyState()).toBe(before);
    // The real key still works after all of it.
    const again = await kms
      .api('post', `/elastickey/${ids.enc}/decrypt`)
      .set('Authorization', `Bearer ${tokens.crypto}`)
      .type('application/jose')
      .send(samples.jwe)
      .responseType('blob');
    expect([again.status, Buffer.from(again.body as Buffer).toString()]).toEqual([200, 'the plaintext']);
  }, 180_000);
});
