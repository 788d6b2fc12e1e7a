/**
 * DPoP at Identity (identity.md "Beyond the anchors", RFC 9449): discovery advertises it, a proof binds
 * the access token (`cnf.jkt`, `token_type: DPoP`, kept by our JWT introspection), server nonces are
 * required, proofs are single-use, public clients must use it and their refresh tokens are bound too.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { createDpopProof, type DpopKeyPair } from '@cryptoutil/jose-authority';
import { identityConfigSchema } from '../src/config.js';
import { dpopNonceSecret } from '../src/provider/dpop.js';
import {
  ADMIN_TOKEN,
  KMS_SERVICE_SECRET,
  SECRETS_WITH_ADMIN_TOKEN,
  SPA_REDIRECT,
  loginThroughForm,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

interface Answer {
  status: number;
  nonce: string | null;
  body: Record<string, unknown>;
}

const KMS_SERVICE = `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`;

describeEachDatabase('Identity DPoP', (db) => {
  let t: TestIdentity;
  let keys: DpopKeyPair;
  let jkt: string;
  let tokenUrl: string;

  beforeAll(async () => {
    t = await startTestIdentity(db, { secrets: SECRETS_WITH_ADMIN_TOKEN });
    keys = await generateKeyPair('ES256');
    jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
    tokenUrl = `${t.identity.issuer}/token`;
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  const post = async (url: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await t.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
    const text = await res.text();
    return {
      status: res.status,
      nonce: res.headers.get('dpop-nonce'),
      body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    } satisfies Answer;
  };
  const proof = (nonce?: string, signer = keys) =>
    createDpopProof(signer, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) });
  /** A token request with a proof, answering Identity's nonce challenge once. */
  const withNonce = async (form: Record<string, string>, headers: Record<string, string> = {}, signer = keys) => {
    const first = await post(tokenUrl, form, { ...headers, dpop: await proof(undefined, signer) });
    expect([first.status, first.body.error]).toEqual([400, 'use_dpop_nonce']);
    expect(first.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return post(tokenUrl, form, { ...headers, dpop: await proof(first.nonce ?? '', signer) });
  };
  const introspect = (token: string) =>
    post(`${t.identity.issuer}/token/introspection`, { token }, { authorization: KMS_SERVICE });

  it('advertises the DPoP proof algorithms in discovery', async () => {
    const res = await t.fetch(`${t.identity.issuer}/.well-known/openid-configuration`);
    const discovery = (await res.json()) as { dpop_signing_alg_values_supported?: string[] };
    expect(discovery.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA', 'PS256']));
    expect(discovery.dpop_signing_alg_values_supported).not.toContain('HS256');
  });

  it('binds a client-credentials token to the proof key: cnf.jkt, token_type DPoP, kept by introspection', async () => {
    const form = { grant_type: 'client_credentials', scope: 'kms:read' };
    const answer = await withNonce(form, { authorization: KMS_SERVICE });
    expect(answer.status).toBe(200);
    expect(answer.body.token_type).toBe('DPoP');
    const accessToken = String(answer.body.access_token);
    expect(decodeJwt(accessToken)).toMatchObject({ cnf: { jkt }, client_id: 'kms-service', scope: 'kms:read' });
    const introspected = await introspect(accessToken);
    expect(introspected.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
    // The same confidential client without a proof still gets a plain bearer token.
    const plain = await post(tokenUrl, form, { authorization: KMS_SERVICE });
    expect(plain.body.token_type).toBe('Bearer');
    expect(decodeJwt(String(plain.body.access_token)).cnf).toBeUndefined();
    expect((await introspect(String(plain.body.access_token))).body).toMatchObject({
      active: true,
      token_type: 'Bearer',
    });
  });

  it('requires a valid server nonce and refuses a replayed proof', async () => {
    const form = { grant_type: 'client_credentials', scope: 'kms:read' };
    const headers = { authorization: KMS_SERVICE };
    const forged = await post(tokenUrl, form, { ...headers, dpop: await proof('A'.repeat(43)) });
    expect([forged.status, forged.body.error]).toEqual([400, 'use_dpop_nonce']);
    expect(forged.nonce).toBeTruthy();
    const once = await proof(forged.nonce ?? '');
    expect((await post(tokenUrl, form, { ...headers, dpop: once })).status).toBe(200);
    const replayed = await post(tokenUrl, form, { ...headers, dpop: once });
    expect([replayed.status, replayed.body.error]).toEqual([400, 'invalid_grant']);
    // A proof for another endpoint is refused too.
    const elsewhere = await createDpopProof(keys, {
      htm: 'POST',
      htu: `${t.identity.issuer}/token/introspection`,
      nonce: forged.nonce ?? '',
    });
    expect((await post(tokenUrl, form, { ...headers, dpop: elsewhere })).body.error).toBe('invalid_dpop_proof');
  });

  it('derives the nonce secret from the at-rest key (so instances agree) or from its own secret', () => {
    const parse = (secrets: Record<string, string>) => identityConfigSchema.parse({ secrets }).secrets;
    const base = { cookie_keys: ['c'.repeat(32)], signing_key_encryption: 'a'.repeat(32) };
    const derived = dpopNonceSecret(parse(base));
    expect(derived).toHaveLength(32);
    expect(dpopNonceSecret(parse(base)).equals(derived)).toBe(true);
    expect(derived.equals(Buffer.from('a'.repeat(32)))).toBe(false);
    expect(dpopNonceSecret(parse({ ...base, dpop_nonce_key: 'n'.repeat(32) })).equals(derived)).toBe(false);
    expect(() => parse({ ...base, dpop_nonce_key: 'short' })).toThrow();
  });

  it('makes a public client use DPoP: no proof is refused, its tokens and refresh tokens are bound', async () => {
    const created = await t.fetch(`${t.identity.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'DPoP SPA',
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        redirect_uris: [SPA_REDIRECT],
        scope: 'openid profile offline_access kms:encrypt',
        trusted: true,
      }),
    });
    expect(created.status).toBe(201);
    const clientId = String(((await created.json()) as { client_id: string }).client_id);
    const config = await t.discover(clientId, client.None());
    const pkce = await startPkce(config, { prompt: 'consent' });
    const callback = await loginThroughForm(t, pkce.url, 'demo-user', 'demo-user-password');
    const code = callback.searchParams.get('code') ?? '';
    const form = {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: SPA_REDIRECT,
      code_verifier: pkce.verifier,
    };
    const refused = await post(tokenUrl, form);
    expect([refused.status, refused.body.error]).toEqual([400, 'invalid_grant']);
    // The code was valid and not spent by the refusal: with a proof (the only difference) it is exchanged.
    const tokens = await withNonce(form);
    expect([tokens.status, tokens.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(String(tokens.body.access_token)).cnf).toEqual({ jkt });
    const refreshToken = String(tokens.body.refresh_token);
    expect(refreshToken).not.toBe('undefined');

    const refresh = { grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken };
    const withoutProof = await post(tokenUrl, refresh);
    expect([withoutProof.status, withoutProof.body.error]).toEqual([400, 'invalid_grant']);
    const thief = await generateKeyPair('ES256');
    const stolen = await withNonce(refresh, {}, thief);
    expect([stolen.status, stolen.body.error]).toEqual([400, 'invalid_grant']);
    const renewed = await withNonce(refresh);
    expect([renewed.status, renewed.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(String(renewed.body.access_token)).cnf).toEqual({ jkt });
  });

  it('lets a public client registered with dpop_bound_access_tokens false opt out', async () => {
    const created = await t.fetch(`${t.identity.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
        redirect_uris: [SPA_REDIRECT],
        scope: 'openid kms:encrypt',
        trusted: true,
        dpop_bound_access_tokens: false,
      }),
    });
    expect(created.status).toBe(201);
    const clientId = String(((await created.json()) as { client_id: string }).client_id);
    const config = await t.discover(clientId, client.None());
    const pkce = await startPkce(config, { scope: 'openid kms:encrypt' });
    const callback = await loginThroughForm(t, pkce.url, 'demo-user', 'demo-user-password');
    const tokens = await post(tokenUrl, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: callback.searchParams.get('code') ?? '',
      redirect_uri: SPA_REDIRECT,
      code_verifier: pkce.verifier,
    });
    expect([tokens.status, tokens.body.token_type]).toEqual([200, 'Bearer']);
  });
});
