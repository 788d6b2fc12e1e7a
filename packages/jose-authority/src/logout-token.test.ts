import { beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, type JWK, type JWTPayload, type KeyLike } from 'jose';
import { BACKCHANNEL_LOGOUT_EVENT, LogoutTokenError, verifyLogoutToken } from './logout-token.js';

const ISSUER = 'https://identity.example';
const CLIENT = 'kms-console';
let key: KeyLike | CryptoKey;
let other: KeyLike | CryptoKey;
let getKey: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  ({ privateKey: other } = await generateKeyPair('ES256'));
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  getKey = createLocalJWKSet({ keys: [jwk] });
});

const good: JWTPayload = {
  iss: ISSUER,
  aud: CLIENT,
  sub: 'user-1',
  sid: 'session-1',
  jti: 'jti-1',
  events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
};

async function token(
  claims: JWTPayload = good,
  header: { typ?: string; alg?: string } = { typ: 'logout+jwt' },
  signingKey: KeyLike | CryptoKey | Uint8Array = key,
  iat?: number,
) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header });
  return (iat === undefined ? jwt.setIssuedAt() : jwt.setIssuedAt(iat)).sign(signingKey);
}

const verify = (jwt: string) => verifyLogoutToken(jwt, { getKey, issuer: ISSUER, audience: CLIENT });

async function refusal(jwt: Promise<string>): Promise<string> {
  const error = await verify(await jwt).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(LogoutTokenError);
  return (error as Error).message;
}

describe('back-channel logout tokens', () => {
  it('accepts a signed logout token and returns who and which session signed out', async () => {
    await expect(verify(await token())).resolves.toMatchObject({ sub: 'user-1', sid: 'session-1', jti: 'jti-1' });
    const { sid: _sid, ...subOnly } = good;
    await expect(verify(await token(subOnly, {}))).resolves.toEqual(
      expect.objectContaining({ sub: 'user-1', jti: 'jti-1' }),
    );
  });

  it('refuses another issuer, another audience, another key and a symmetric algorithm', async () => {
    expect(await refusal(token({ ...good, iss: 'https://evil.example' }))).toMatch(/iss/);
    expect(await refusal(token({ ...good, aud: 'someone-else' }))).toMatch(/aud/);
    expect(await refusal(token(good, { typ: 'logout+jwt' }, other))).toMatch(/signature/);
    const hs = new SignJWT(good)
      .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'logout+jwt' })
      .setIssuedAt()
      .sign(new Uint8Array(32));
    await expect(verify(await hs)).rejects.toBeInstanceOf(LogoutTokenError);
  });

  it('refuses what is not a logout token: no event, a nonce, an ID token type, no sub and no sid, no jti', async () => {
    const { events: _events, ...noEvent } = good;
    expect(await refusal(token(noEvent))).toMatch(/event/);
    expect(await refusal(token({ ...good, events: { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' } }))).toMatch(/event/);
    expect(await refusal(token({ ...good, nonce: 'n' }))).toMatch(/nonce/);
    expect(await refusal(token(good, { typ: 'JWT' }))).toMatch(/typ/);
    const { sub: _sub, sid: _sid, ...anonymous } = good;
    expect(await refusal(token(anonymous))).toMatch(/sub nor sid/);
    const { jti: _jti, ...noJti } = good;
    expect(await refusal(token(noJti))).toMatch(/jti/);
  });

  it('refuses a token issued too long ago', async () => {
    expect(await refusal(token(good, { typ: 'logout+jwt' }, key, Math.floor(Date.now() / 1000) - 3600))).toMatch(
      /iat|age|old/i,
    );
  });
});
