/**
 * DPoP at the KMS (identity.md "Beyond the anchors", RFC 9449): `Authorization: DPoP` with a proof is
 * accepted, a bound token as Bearer and every wrong proof are 401, and used proof ids live in the KMS
 * database so a proof replayed to another instance on the same database is refused too.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { Database } from '@cryptoutil/infra';
import { describeEachDatabase, uniquePrefix } from '@cryptoutil/infra/testing';
import { TokenValidator, accessTokenHash } from '@cryptoutil/jose-authority';
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';
import { accessControl } from '../src/api/access.js';
import { createAuthenticator } from '../src/api/authentication.js';
import {
  deleteExpiredDpopProofs,
  databaseDpopReplayStore,
  recordDpopProof,
} from '../src/data/dpop-proof-repository.js';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { createPasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';
import { startTestKms, type TestKms } from './harness.js';

/** The KMS as clients reach it (a proxy's URL): proofs name this, not the test listener's port. */
const PUBLIC_URL = 'https://kms.test';
const API = '/service/api/v1';

const issuer = new FakeIssuer();
interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}
async function holder(): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}
let key: Holder;
let thief: Holder;

beforeAll(async () => {
  await issuer.start();
  await issuer.addKey('identity-key-1');
  issuer.audience = PUBLIC_URL;
  key = await holder();
  thief = await holder();
});
afterAll(async () => issuer.stop());

async function proof(
  signer: Holder,
  token: string,
  method: string,
  path: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({
    jti: randomUUID(),
    htm: method,
    htu: `${PUBLIC_URL}${API}${path}`,
    iat: Math.floor(Date.now() / 1000),
    ath: accessTokenHash(token),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: signer.jwk })
    .sign(signer.privateKey);
}

/** One KMS instance on `db`: its own validator (own caches), the shared replay table. */
async function instance(db: Database): Promise<TestKms> {
  const validator = new TokenValidator({
    issuer: issuer.url,
    audience: PUBLIC_URL,
    revocation: { auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 'kms-secret-0123456789' } },
    dpop: { replay: databaseDpopReplayStore(db) },
  });
  const realms = buildRealms(realmFileSchema.parse({ version: 1, realms: [] }), { demo: false });
  const authenticate = createAuthenticator({
    methods: ['bearer'],
    validator,
    publicUrl: PUBLIC_URL,
    login: createPasswordLogin({ realms, db, lockout: { maxFailures: 3, lockoutMs: 60_000 } }),
    apiKeys: [],
    certificates: [],
  });
  return startTestKms(db, {
    access: accessControl({ authenticate, realm: 'kms', dpopAlgorithms: validator.dpop.algorithms }),
  });
}

describeEachDatabase('KMS DPoP', (db) => {
  let opened: Database;
  let kms: TestKms;
  let other: TestKms;
  let keyId: string;
  let token: string;

  beforeAll(async () => {
    opened = await db.open(KMS_MIGRATIONS);
    // PostgreSQL: a second pool, as a second KMS process would have; SQLite: one database, one writer.
    const second = db.dialect === 'postgres' ? await db.open() : opened;
    kms = await instance(opened);
    other = await instance(second);
    token = await issuer.token({ scope: 'kms:write kms:read', cnf: { jkt: key.jkt } });
    const created = await kms
      .api('post', '/elastickey')
      .set('Authorization', `DPoP ${token}`)
      .set('DPoP', await proof(key, token, 'POST', '/elastickey'))
      .send({ name: uniquePrefix('dpop'), description: 'd', algorithm: 'A256GCM/dir' });
    expect(created.status).toBe(201);
    keyId = String(created.body.elastic_key_id);
  });

  const encrypt = (
    instanceKms: TestKms,
    authorization: string,
    dpop?: string,
    path = `/elastickey/${keyId}/encrypt`,
  ) => {
    const req = instanceKms.api('post', `${path}?context=dpop`).set('Authorization', authorization);
    return (dpop === undefined ? req : req.set('DPoP', dpop)).set('content-type', 'text/plain').send('secret text');
  };

  it('records a proof id once: a second insert of the id is a replay, even when both race', async () => {
    const id = `race-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 10 }, () => recordDpopProof(opened, id, Date.now() + 60_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await recordDpopProof(opened, id, Date.now() + 60_000)).toBe(false);
  });

  it('sweeps only expired proof ids', async () => {
    const now = Date.now();
    await recordDpopProof(opened, `old-${randomUUID()}`, now - 1000);
    const live = `live-${randomUUID()}`;
    await recordDpopProof(opened, live, now + 60_000);
    expect(await deleteExpiredDpopProofs(opened, now)).toBeGreaterThanOrEqual(1);
    const [left] = await opened.all<{ count: number | string }>(
      sql`SELECT COUNT(*) AS count FROM kms_dpop_proofs WHERE expires_ms < ${now}`,
    );
    expect(Number(left?.count)).toBe(0);
    expect(await recordDpopProof(opened, live, now + 60_000)).toBe(false);
  });

  it('encrypts with a DPoP-bound token and a proof for this request (query ignored in htu)', async () => {
    const res = await encrypt(kms, `DPoP ${token}`, await proof(key, token, 'POST', `/elastickey/${keyId}/encrypt`));
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/);
  });

  it('refuses the bound token as Bearer: 401, invalid_token on the DPoP challenge, Bearer offered too', async () => {
    const res = await encrypt(kms, `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(
      /^Bearer realm="kms", DPoP realm="kms", error="invalid_token", error_description="[^"]+", algs="ES256 [^"]*"$/,
    );
    expect(res.body).toMatchObject({ code: 'invalid_token', error: 'invalid_token', status: 401 });
    // Even with a valid proof alongside: the scheme says Bearer.
    const withProof = await encrypt(
      kms,
      `Bearer ${token}`,
      await proof(key, token, 'POST', `/elastickey/${keyId}/encrypt`),
    );
    expect(withProof.status).toBe(401);
  });

  it('refuses a stolen token with a proof signed by another key, and a missing proof', async () => {
    const stolen = await encrypt(
      kms,
      `DPoP ${token}`,
      await proof(thief, token, 'POST', `/elastickey/${keyId}/encrypt`),
    );
    expect(stolen.status).toBe(401);
    expect(stolen.body).toMatchObject({ code: 'invalid_dpop_proof', error: 'invalid_dpop_proof' });
    expect(stolen.headers['www-authenticate']).toContain('DPoP realm="kms", error="invalid_dpop_proof"');
    const none = await encrypt(kms, `DPoP ${token}`);
    expect([none.status, none.body.code]).toEqual([401, 'invalid_dpop_proof']);
  });

  it('refuses a proof for another method, URL or token', async () => {
    const path = `/elastickey/${keyId}/encrypt`;
    const wrong = [
      await proof(key, token, 'GET', path),
      await proof(key, token, 'POST', `/elastickey/${keyId}/decrypt`),
      await proof(key, token, 'POST', path, { htu: `https://127.0.0.1:8081${API}${path}` }),
      await proof(key, token, 'POST', path, { ath: accessTokenHash(`${token}x`) }),
      await proof(key, token, 'POST', path, { iat: Math.floor(Date.now() / 1000) - 120 }),
    ];
    for (const dpop of wrong) {
      const res = await encrypt(kms, `DPoP ${token}`, dpop);
      expect([res.status, res.body.code]).toEqual([401, 'invalid_dpop_proof']);
    }
  });

  it('refuses a replayed proof on the same instance and on another instance sharing the database', async () => {
    const path = `/elastickey/${keyId}/encrypt`;
    const once = await proof(key, token, 'POST', path);
    expect((await encrypt(kms, `DPoP ${token}`, once)).status).toBe(200);
    const again = await encrypt(kms, `DPoP ${token}`, once);
    expect([again.status, again.body.code]).toEqual([401, 'invalid_dpop_proof']);
    const elsewhere = await encrypt(other, `DPoP ${token}`, once);
    expect([elsewhere.status, elsewhere.body.code]).toEqual([401, 'invalid_dpop_proof']);
    // The other instance accepts a fresh proof: only the replay was refused.
    expect((await encrypt(other, `DPoP ${token}`, await proof(key, token, 'POST', path))).status).toBe(200);
  });

  it('refuses an unbound token sent with the DPoP scheme, and offers DPoP when no credential came', async () => {
    const unbound = await issuer.token({ scope: 'kms:read' });
    const res = await kms
      .api('get', '/elastickeys')
      .set('Authorization', `DPoP ${unbound}`)
      .set('DPoP', await proof(key, unbound, 'GET', '/elastickeys'));
    expect([res.status, res.body.code]).toEqual([401, 'invalid_token']);
    const none = await kms.api('get', '/elastickeys');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(
      /^Bearer realm="kms", DPoP realm="kms", algs="ES256 [A-Za-z0-9 ]+"$/,
    );
  });
});
