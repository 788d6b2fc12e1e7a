import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { FakeIssuer } from './testing/fake-issuer.js';
import { bearerGuard, principalOf } from './bearer-guard.js';
import {
  DpopProofVerifier,
  MemoryDpopReplayStore,
  accessTokenHash,
  normaliseHtu,
  requestHtu,
  type DpopPresentation,
} from './dpop-proof.js';
import { createDpopProof } from './dpop-client.js';
import { TokenValidationError } from './token-errors.js';
import { TokenValidator } from './token-validator.js';

const URL_ = 'https://kms.example/service/api/v1/elastickeys';
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function holder(alg = 'ES256'): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A proof signed with jose; `claims`/`header` override or (undefined) remove members. */
async function proof(
  key: Holder,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload = Object.fromEntries(
    Object.entries({
      jti: randomUUID(),
      htm: 'GET',
      htu: URL_,
      iat: Math.floor(Date.now() / 1000),
      ath: accessTokenHash(TOKEN),
      ...claims,
    }).filter(([, value]) => value !== undefined),
  );
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header } as never)
    .sign(key.privateKey);
}

const at = (proofValue: string | undefined, method = 'GET', url = URL_): DpopPresentation => ({
  proof: proofValue,
  method,
  url,
});

async function refusal(attempt: Promise<unknown>): Promise<TokenValidationError> {
  const error = await attempt.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TokenValidationError);
  return error as TokenValidationError;
}

describe('DPoP proof verifier', () => {
  let key: Holder;
  let other: Holder;
  const verifier = (options: { now?: () => number; maxAgeSeconds?: number } = {}) =>
    new DpopProofVerifier({ replay: new MemoryDpopReplayStore(), ...options });

  beforeAll(async () => {
    key = await holder();
    other = await holder();
  });

  it('accepts a proof for this method, URL, token and key', async () => {
    await expect(verifier().verify(at(await proof(key)), TOKEN, key.jkt)).resolves.toBeUndefined();
  });

  it('accepts a proof built by hand with node:crypto (ES256, RFC 7638 thumbprint computed independently)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    // RFC 7638: the required members in lexicographic order, no whitespace, SHA-256, base64url.
    const jkt = createHash('sha256')
      .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
      .digest('base64url');
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const signingInput = `${part({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } })}.${part(
      {
        jti: randomUUID(),
        htm: 'POST',
        htu: 'https://kms.example/service/api/v1/elastickey/k1/encrypt',
        iat: Math.floor(Date.now() / 1000),
        ath: createHash('sha256').update(TOKEN).digest('base64url'),
      },
    )}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const handMade = `${signingInput}.${signature.toString('base64url')}`;
    await expect(
      verifier().verify(
        at(handMade, 'POST', 'https://kms.example/service/api/v1/elastickey/k1/encrypt?context=x'),
        TOKEN,
        jkt,
      ),
    ).resolves.toBeUndefined();
  });

  it('accepts what createDpopProof makes (the client side used by the demo relying party)', async () => {
    const pair = await generateKeyPair('ES256');
    const jkt = await calculateJwkThumbprint(await exportJWK(pair.publicKey));
    const made = await createDpopProof(pair, { htm: 'POST', htu: `${URL_}?page=1`, accessToken: TOKEN, nonce: 'n' });
    await expect(verifier().verify(at(made, 'POST'), TOKEN, jkt)).resolves.toBeUndefined();
  });

  it('refuses a missing proof, two proofs and a malformed one', async () => {
    const v = verifier();
    expect((await refusal(v.verify(at(undefined), TOKEN, key.jkt))).code).toBe('invalid_dpop_proof');
    const one = await proof(key);
    expect((await refusal(v.verify(at(`${one}, ${one}`), TOKEN, key.jkt))).description).toContain('exactly one');
    expect((await refusal(v.verify(at('not.a-jwt'), TOKEN, key.jkt))).description).toContain('malformed');
    expect((await refusal(v.verify(at(`${one}x`.repeat(200)), TOKEN, key.jkt))).description).toContain('malformed');
  });

  it('refuses another typ, a symmetric or unlisted algorithm, and alg none', async () => {
    const v = verifier();
    expect((await refusal(v.verify(at(await proof(key, {}, { typ: 'JWT' })), TOKEN, key.jkt))).details.claim).toBe(
      'typ',
    );
    const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
    const hmac = await new SignJWT({ jti: 'h', htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'MDEyMzQ1' } } as never)
      .sign(secret);
    expect((await refusal(v.verify(at(hmac), TOKEN, key.jkt))).details.claim).toBe('alg');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
    expect((await refusal(v.verify(at(unsigned), TOKEN, key.jkt))).description).toContain('malformed');
    const es256Only = new DpopProofVerifier({ replay: new MemoryDpopReplayStore(), algorithms: ['ES256', 'HS256'] });
    expect(es256Only.algorithms).toEqual(['ES256']);
    const eddsa = await holder('EdDSA');
    expect(
      (await refusal(es256Only.verify(at(await proof(eddsa, {}, { alg: 'EdDSA' })), TOKEN, eddsa.jkt))).details.claim,
    ).toBe('alg');
  });

  it('refuses a jwk with private members, a missing jwk and a bad signature', async () => {
    const v = verifier();
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const withPrivate = await new SignJWT({ jti: 'p', htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: privateJwk } as never)
      .sign(privateKey);
    expect((await refusal(v.verify(at(withPrivate), TOKEN, key.jkt))).description).toContain('public key');
    expect((await refusal(v.verify(at(await proof(key, {}, { jwk: undefined })), TOKEN, key.jkt))).details.claim).toBe(
      'jwk',
    );
    // Signed by `other` while naming `key`'s public key.
    const forged = await new SignJWT({ jti: 'f', htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk } as never)
      .sign(other.privateKey);
    expect((await refusal(v.verify(at(forged), TOKEN, key.jkt))).details.claim).toBe('signature');
  });

  it('refuses another method and another URL; ignores query and fragment; normalises scheme, host, port, path', async () => {
    const v = verifier();
    expect((await refusal(v.verify(at(await proof(key), 'POST'), TOKEN, key.jkt))).details.claim).toBe('htm');
    expect((await refusal(v.verify(at(await proof(key, { htm: 'get' })), TOKEN, key.jkt))).details.claim).toBe('htm');
    for (const htu of [
      'https://kms.example/service/api/v1/elastickey',
      'https://kms.example:8443/service/api/v1/elastickeys',
      'http://kms.example/service/api/v1/elastickeys',
      'https://other.example/service/api/v1/elastickeys',
      'not a url',
      42,
    ]) {
      expect((await refusal(v.verify(at(await proof(key, { htu })), TOKEN, key.jkt))).details.claim).toBe('htu');
    }
    for (const htu of [
      'HTTPS://KMS.Example:443/service/api/v1/elastickeys',
      'https://kms.example/service/api/v1/%65lastickeys',
      'https://kms.example/service/api/v1/x/../elastickeys?page=2#top',
    ]) {
      await expect(v.verify(at(await proof(key, { htu }), 'GET', `${URL_}?q=1`), TOKEN, key.jkt)).resolves.toBe(
        undefined,
      );
    }
    expect(normaliseHtu('https://kms.example/a%2fb')).toBe('https://kms.example/a%2Fb');
    expect(normaliseHtu('ftp://kms.example/')).toBeUndefined();
    expect(requestHtu('https://proxy.example/kms/', '/service/api/v1/elastickeys?x=1')).toBe(
      'https://proxy.example/kms/service/api/v1/elastickeys',
    );
  });

  it('refuses a proof older than the window or from the future beyond the skew, and a missing iat', async () => {
    const now = Date.now();
    const v = verifier({ now: () => now, maxAgeSeconds: 60 });
    const seconds = Math.floor(now / 1000);
    expect((await refusal(v.verify(at(await proof(key, { iat: seconds - 61 })), TOKEN, key.jkt))).details.claim).toBe(
      'iat',
    );
    expect((await refusal(v.verify(at(await proof(key, { iat: seconds + 6 })), TOKEN, key.jkt))).details.claim).toBe(
      'iat',
    );
    expect((await refusal(v.verify(at(await proof(key, { iat: undefined })), TOKEN, key.jkt))).details.claim).toBe(
      'iat',
    );
    await expect(v.verify(at(await proof(key, { iat: seconds - 59 })), TOKEN, key.jkt)).resolves.toBeUndefined();
    await expect(v.verify(at(await proof(key, { iat: seconds + 4 })), TOKEN, key.jkt)).resolves.toBeUndefined();
  });

  it('refuses a proof for another token (ath), a missing ath or jti, and a key the token is not bound to', async () => {
    const v = verifier();
    expect(
      (await refusal(v.verify(at(await proof(key, { ath: accessTokenHash('other') })), TOKEN, key.jkt))).details.claim,
    ).toBe('ath');
    expect((await refusal(v.verify(at(await proof(key, { ath: undefined })), TOKEN, key.jkt))).details.claim).toBe(
      'ath',
    );
    expect((await refusal(v.verify(at(await proof(key, { jti: undefined })), TOKEN, key.jkt))).details.claim).toBe(
      'jti',
    );
    // A stolen token used with the thief's own key: the proof is valid, the key is not the token's.
    expect((await refusal(v.verify(at(await proof(other)), TOKEN, key.jkt))).details.claim).toBe('jkt');
  });

  it('refuses a replayed proof, remembering it no longer than it could be accepted', async () => {
    let now = Date.now();
    const store = new MemoryDpopReplayStore({ now: () => now });
    const v = new DpopProofVerifier({ replay: store, now: () => now });
    const once = await proof(key);
    await v.verify(at(once), TOKEN, key.jkt);
    const replayed = await refusal(v.verify(at(once), TOKEN, key.jkt));
    expect([replayed.code, replayed.details.claim, replayed.description]).toEqual([
      'invalid_dpop_proof',
      'jti',
      'The DPoP proof was already used.',
    ]);
    // A refused proof is not remembered: the same jti in a valid proof later is accepted.
    const jti = randomUUID();
    await refusal(v.verify(at(await proof(key, { jti }), 'POST'), TOKEN, key.jkt));
    await v.verify(at(await proof(key, { jti })), TOKEN, key.jkt);
    now += 66_000;
    expect(await store.remember('x', now + 1000)).toBe(true);
    expect(await store.remember('x', now + 1000)).toBe(false);
  });
});

describe('token validator with DPoP-bound tokens', () => {
  const issuer = new FakeIssuer();
  let key: Holder;
  let other: Holder;
  beforeAll(async () => {
    await issuer.start();
    await issuer.addKey('k1');
    key = await holder();
    other = await holder();
  });
  afterAll(async () => issuer.stop());

  const newValidator = (mode: 'sensitive-only' | 'every-request' = 'sensitive-only') =>
    new TokenValidator({
      issuer: issuer.url,
      audience: 'https://kms.example',
      revocation: { mode, auth: { method: 'client_secret_basic', clientId: 'kms', clientSecret: 's3cret' } },
    });
  const dpopAt = async (token: string, holderKey = key, claims: Record<string, unknown> = {}) => ({
    scheme: 'DPoP' as const,
    dpop: at(await proof(holderKey, { ath: accessTokenHash(token), ...claims })),
  });

  it('accepts a bound token with its proof, and refuses it as Bearer, naming the DPoP scheme', async () => {
    const validator = newValidator();
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const principal = await validator.validate(token, await dpopAt(token));
    expect(principal.claims.cnf).toEqual({ jkt: key.jkt });
    for (const presentation of [{}, { scheme: 'Bearer' as const }]) {
      const asBearer = await refusal(validator.validate(token, presentation));
      expect([asBearer.code, asBearer.details.scheme, asBearer.status]).toEqual(['invalid_token', 'DPoP', 401]);
    }
  });

  it('refuses an unbound token presented with the DPoP scheme', async () => {
    const token = await issuer.token();
    const refused = await refusal(newValidator().validate(token, await dpopAt(token)));
    expect([refused.code, refused.details.claim]).toEqual(['invalid_token', 'cnf']);
  });

  it('checks the proof on every request even though the token verification is cached', async () => {
    const validator = newValidator();
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const first = await dpopAt(token);
    await validator.validate(token, first);
    // Same (cached) token: a replayed proof, a proof of another key, no proof: each refused.
    expect((await refusal(validator.validate(token, first))).details.claim).toBe('jti');
    expect((await refusal(validator.validate(token, await dpopAt(token, other)))).details.claim).toBe('jkt');
    expect((await refusal(validator.validate(token, { scheme: 'DPoP' }))).code).toBe('invalid_dpop_proof');
    await expect(validator.validate(token, await dpopAt(token))).resolves.toMatchObject({ subject: 'kms-service' });
  });

  it('still checks revocation of a bound token through introspection', async () => {
    const validator = newValidator('every-request');
    const token = await issuer.token({ cnf: { jkt: key.jkt }, jti: 'bound-revoked' });
    const before = issuer.introspections;
    await validator.validate(token, await dpopAt(token));
    expect(issuer.introspections).toBe(before + 1);
    issuer.revoked.add('bound-revoked');
    expect((await refusal(validator.validate(token, await dpopAt(token)))).code).toBe('token_revoked');
  });

  describe('bearer guard', () => {
    const app = (publicUrl = 'https://kms.example') => {
      const guard = bearerGuard({ validator: newValidator(), realm: 'kms', publicUrl });
      return express().post('/kms/encrypt', guard.require('kms:encrypt'), (req, res) => {
        res.json({ sub: principalOf(req)?.subject });
      });
    };
    const dpopRequest = async (token: string, claims: Record<string, unknown> = {}) =>
      proof(key, { htm: 'POST', htu: 'https://kms.example/kms/encrypt', ath: accessTokenHash(token), ...claims });

    it('passes Authorization: DPoP with a proof for the public URL (query ignored)', async () => {
      const token = await issuer.token({ cnf: { jkt: key.jkt } });
      const res = await request(app())
        .post('/kms/encrypt?context=x')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await dpopRequest(token));
      expect([res.status, res.body]).toEqual([200, { sub: 'kms-service' }]);
    });

    it('answers a bound token sent as Bearer with 401, error on the DPoP challenge with algs (RFC 9449 §7.1)', async () => {
      const token = await issuer.token({ cnf: { jkt: key.jkt } });
      const res = await request(app()).post('/kms/encrypt').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(401);
      const header = String(res.headers['www-authenticate']);
      expect(header).toMatch(
        /^Bearer realm="kms", DPoP realm="kms", error="invalid_token", error_description="[^"]+", algs="ES256 ES384 ES512 Ed25519 EdDSA PS256 /,
      );
      expect(header).toContain('EdDSA');
      expect(header).not.toContain('HS256');
      expect(res.body).toMatchObject({ code: 'invalid_token', error: 'invalid_token' });
    });

    it('answers a wrong proof with invalid_dpop_proof and offers both schemes when no token came', async () => {
      const token = await issuer.token({ cnf: { jkt: key.jkt } });
      const wrongUrl = await request(app('https://elsewhere.example'))
        .post('/kms/encrypt')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await dpopRequest(token));
      expect(wrongUrl.status).toBe(401);
      expect(wrongUrl.headers['www-authenticate']).toContain('DPoP realm="kms", error="invalid_dpop_proof"');
      expect(wrongUrl.body).toMatchObject({ code: 'invalid_dpop_proof', error: 'invalid_dpop_proof' });
      const none = await request(app()).post('/kms/encrypt');
      expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="kms", DPoP realm="kms", algs="[A-Za-z0-9 ]+"$/);
    });
  });
});
