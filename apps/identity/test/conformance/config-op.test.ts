/**
 * Offline mirror of the OpenID Foundation "Config OP" plan (oidcc-config-certification-test-plan) and of the
 * modules the contract names from the dynamic plan that apply to statically registered clients (key rotation,
 * redirect URIs with a query). One test per module, driven by oauth4webapi (discovery, raw checks) and
 * openid-client (flows). docs/CONFORMANCE.md maps each module to its test.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import * as oauth from 'oauth4webapi';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { ADMIN_TOKEN } from '../harness.js';
import {
  REDIRECT,
  REDIRECT_WITH_QUERY,
  arrive,
  authorizationRequest,
  newBrowser,
  rawCodeRedemption,
  signInAndRedeem,
  startConformanceOp,
  type ConformanceOp,
} from './relying-party.js';

describeEachDatabase('OpenID conformance mirror: Config OP plan and static-client redirect/key modules', (db) => {
  let op: ConformanceOp;
  beforeAll(async () => {
    op = await startConformanceOp(db);
  });
  afterAll(async () => {
    await op.close();
  });

  const jwks = async () => (await (await op.t.fetch(`${op.issuer}/jwks`)).json()) as JSONWebKeySet;

  it('OIDCCDiscoveryEndpointVerification (oidcc-discovery-endpoint-verification): the document is complete and consistent', async () => {
    const response = await oauth.discoveryRequest(new URL(op.issuer), { [oauth.customFetch]: op.t.fetch });
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    // oauth4webapi checks that `issuer` equals the URL the document came from, byte for byte.
    const as = await oauth.processDiscoveryResponse(new URL(op.issuer), response);
    expect(as.issuer).toBe(op.issuer);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri'] as const) {
      expect(new URL(String(as[endpoint])).protocol).toBe('https:');
      expect(String(as[endpoint]).startsWith(op.issuer)).toBe(true);
    }
    expect(as.response_types_supported).toContain('code');
    expect(as.subject_types_supported).toEqual(expect.arrayContaining(['public']));
    expect(as.id_token_signing_alg_values_supported).toContain('RS256');
    expect(as.id_token_signing_alg_values_supported).not.toContain('none');
    expect(as.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));
    expect(as.claims_supported).toEqual(expect.arrayContaining(['sub', 'iss', 'name', 'email']));
    expect(as.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    expect(as.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post']),
    );
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    // The JWKS: public keys only, unique kids, every signing alg of discovery has a key.
    const keys = (await jwks()).keys;
    expect(new Set(keys.map((key) => key.kid)).size).toBe(keys.length);
    for (const key of keys) {
      expect(key).toMatchObject({ kid: expect.any(String), kty: expect.stringMatching(/^(EC|RSA|OKP)$/) });
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(secret);
    }
    for (const alg of ['ES256', 'RS256']) expect(keys.map((key) => key.alg)).toContain(alg);
    // The OAuth 2.0 metadata (RFC 8414) tells the same story.
    const rfc8414 = (await (await op.t.fetch(`${op.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(rfc8414).toMatchObject({ issuer: op.issuer, jwks_uri: as.jwks_uri, token_endpoint: as.token_endpoint });
  });

  it('OIDCCServerRotateKeys (oidcc-server-rotate-keys): after a rotation new ID tokens use a new key, both verify', async () => {
    const before = await signInAndRedeem(op, op.basic);
    const oldKid = decodeProtectedHeader(before.tokens.id_token!).kid;
    const rotated = await op.t.fetch(`${op.t.identity.adminUrl}/admin/v1/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(rotated.status).toBe(201);
    const after = await signInAndRedeem(op, op.basic);
    const newKid = decodeProtectedHeader(after.tokens.id_token!).kid;
    expect(newKid).not.toBe(oldKid);
    const keySet = createLocalJWKSet(await jwks());
    for (const token of [before.tokens.id_token!, after.tokens.id_token!]) {
      await expect(jwtVerify(token, keySet, { issuer: op.issuer, audience: op.basic.clientId })).resolves.toBeDefined();
    }
  });

  it('OIDCCRedirectUriQueryOK (oidcc-redirect-uri-query-OK): a registered redirect URI with a query works, query kept', async () => {
    const request = await authorizationRequest(op.basic, { redirect_uri: REDIRECT_WITH_QUERY });
    const arrival = await arrive(op, newBrowser(op), request.url);
    expect(arrival.url.searchParams.get('foo')).toBe('bar');
    // openid-client rebuilds the redirect URI from the callback; the module needs it exactly as registered.
    const redeemed = await rawCodeRedemption(op, op.basic, arrival.url, request.verifier, REDIRECT_WITH_QUERY);
    expect(redeemed.status).toBe(200);
    expect(redeemed.body.id_token).toEqual(expect.any(String));
  });

  it.each([
    ['OIDCCRedirectUriQueryMismatch (oidcc-redirect-uri-query-mismatch)', REDIRECT_WITH_QUERY.replace('bar', 'zot')],
    ['OIDCCRedirectUriQueryAdded (oidcc-redirect-uri-query-added)', `${REDIRECT}?foo=bar`],
  ])('%s: a query that differs from the registration gets an OP error page, no redirect', async (_name, uri) => {
    const request = await authorizationRequest(op.basic, { redirect_uri: uri });
    const arrival = await arrive(op, newBrowser(op), request.url, { signIn: false });
    expect(arrival.url.toString().startsWith(op.issuer)).toBe(true);
    expect(arrival.response.status).toBe(400);
    expect(await arrival.response.text()).toMatch(/redirect_uri/);
  });
});
