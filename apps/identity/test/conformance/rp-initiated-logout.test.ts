/**
 * Offline mirror of the OpenID Foundation "RP-Initiated Logout OP" plan
 * (oidcc-rp-initiated-logout-certification-test-plan, response_type=code, static client): one test per module.
 * The OP asks the user to confirm every logout (a page with the provider's form); a module "passes" when the
 * OP redirects only to a registered post-logout URI named by a verified hint or client_id, echoes `state`
 * only then, and otherwise shows its own error or signed-out page. docs/CONFORMANCE.md maps each module.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { SignJWT, decodeJwt } from 'jose';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import type { newBrowser } from './relying-party.js';
import {
  POST_LOGOUT,
  arrive,
  authorizationRequest,
  signInAndRedeem,
  startConformanceOp,
  type ConformanceOp,
} from './relying-party.js';

describeEachDatabase('OpenID conformance mirror: RP-Initiated Logout OP plan', (db) => {
  let op: ConformanceOp;
  beforeAll(async () => {
    op = await startConformanceOp(db);
  });
  afterAll(async () => {
    await op.close();
  });

  /**
   * Sends the browser to the end-session endpoint; when the OP asks to confirm, says yes. Returns where the
   * browser ended (the client's post-logout URI or an OP page) and whether a confirmation was asked.
   */
  async function endSession(browser: ReturnType<typeof newBrowser>, params: Record<string, string>) {
    const url = new URL(op.basic.config.serverMetadata().end_session_endpoint!);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const first = await browser.follow(url.toString());
    const html = await first.response.clone().text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    if (!first.url.startsWith(op.issuer) || !xsrf) {
      return { url: new URL(first.url), response: first.response, confirmed: false };
    }
    const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
    const done = await browser.follow(new URL(action, op.issuer).toString(), { form: { xsrf, logout: 'yes' } });
    return { url: new URL(done.url), response: done.response, confirmed: true };
  }

  /** Whether the browser still has a session at the OP (prompt=none answers a code, not login_required). */
  async function stillSignedIn(browser: ReturnType<typeof newBrowser>) {
    const request = await authorizationRequest(op.basic, { prompt: 'none' });
    const arrival = await arrive(op, browser, request.url, { signIn: false });
    return arrival.url.searchParams.get('code') !== null;
  }

  const atOp = (url: URL) => url.toString().startsWith(op.issuer);

  it('OIDCCRpInitiatedLogoutDiscoveryEndpointVerification (oidcc-rp-initiated-logout-discovery-endpoint-verification)', () => {
    const endpoint = op.basic.config.serverMetadata().end_session_endpoint;
    expect(endpoint).toEqual(expect.any(String));
    expect(endpoint!.startsWith(`${op.issuer}/`)).toBe(true);
  });

  it('OIDCCRpInitiatedLogout (oidcc-rp-initiated-logout): confirmed, redirected to the registered URI with state, session ended', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    expect(await stillSignedIn(browser)).toBe(true);
    const state = client.randomState();
    const end = await endSession(browser, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT,
      state,
    });
    expect(end.confirmed).toBe(true);
    expect(`${end.url.origin}${end.url.pathname}`).toBe(POST_LOGOUT);
    expect(end.url.searchParams.get('state')).toBe(state);
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('OIDCCRpInitiatedLogoutBadPostLogoutRedirectUri (oidcc-rp-initiated-logout-bad-post-logout-redirect-uri): an OP error page, no redirect', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'https://attacker.example.test/logged-out',
      state: 'xyz',
    });
    expect(atOp(end.url)).toBe(true);
    expect(end.response.status).toBe(400);
    expect(await end.response.text()).toMatch(/post_logout_redirect_uri/);
  });

  it('OIDCCRpInitiatedLogoutModifiedIdTokenHint (oidcc-rp-initiated-logout-modified-id-token-hint): a broken signature gets an error page, no redirect', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const [header, payload, signature] = tokens.id_token!.split('.');
    const flipped = `${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
    const end = await endSession(browser, {
      id_token_hint: `${header}.${payload}.${flipped}`,
      post_logout_redirect_uri: POST_LOGOUT,
      state: 'xyz',
    });
    expect(atOp(end.url)).toBe(true);
    expect(end.response.status).toBe(400);
    expect(await stillSignedIn(browser)).toBe(true);
  });

  it('OIDCCRpInitiatedLogoutBadIdTokenHint (oidcc-rp-initiated-logout-bad-id-token-hint): a hint signed by someone else gets an error page, no redirect', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const claims = decodeJwt(tokens.id_token!);
    // The suite signs its own ID token (HS256 keyed with the client secret), with the real claims.
    const forged = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(op.basic.secret));
    const end = await endSession(browser, {
      id_token_hint: forged,
      post_logout_redirect_uri: POST_LOGOUT,
      state: 'xyz',
    });
    expect(atOp(end.url)).toBe(true);
    expect(end.response.status).toBe(400);
    expect(await stillSignedIn(browser)).toBe(true);
  });

  it('OIDCCRpInitiatedLogoutNoIdTokenHint (oidcc-rp-initiated-logout-no-id-token-hint): client_id instead of a hint, confirmed and redirected', async () => {
    const { browser } = await signInAndRedeem(op, op.basic);
    const state = client.randomState();
    const end = await endSession(browser, {
      client_id: op.basic.clientId,
      post_logout_redirect_uri: POST_LOGOUT,
      state,
    });
    expect(end.confirmed).toBe(true);
    expect(`${end.url.origin}${end.url.pathname}`).toBe(POST_LOGOUT);
    expect(end.url.searchParams.get('state')).toBe(state);
    expect(await stillSignedIn(browser)).toBe(false);
    // Without a hint and without client_id the URI cannot be checked against a client: never redirected to.
    const { browser: other } = await signInAndRedeem(op, op.basic);
    const anonymous = await endSession(other, { post_logout_redirect_uri: POST_LOGOUT, state });
    expect(atOp(anonymous.url)).toBe(true);
    expect(anonymous.url.toString()).not.toContain(state);
  });

  it('OIDCCRpInitiatedLogoutNoParams (oidcc-rp-initiated-logout-no-params): confirmed, signed-out page at the OP', async () => {
    const { browser } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, {});
    expect(end.confirmed).toBe(true);
    expect(atOp(end.url)).toBe(true);
    expect(await end.response.text()).toContain('You are signed out');
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('OIDCCRpInitiatedLogoutNoPostLogoutRedirectUri (oidcc-rp-initiated-logout-no-post-logout-redirect-uri): signed-out page, no redirect', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, { id_token_hint: tokens.id_token! });
    expect(end.confirmed).toBe(true);
    expect(atOp(end.url)).toBe(true);
    expect(await end.response.text()).toContain('You are signed out');
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('OIDCCRpInitiatedLogoutNoState (oidcc-rp-initiated-logout-no-state): redirected without a state', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT });
    expect(`${end.url.origin}${end.url.pathname}`).toBe(POST_LOGOUT);
    expect(end.url.searchParams.has('state')).toBe(false);
  });

  it('OIDCCRpInitiatedLogoutOnlyState (oidcc-rp-initiated-logout-only-state): state alone, no redirect', async () => {
    const { browser } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, { state: 'only-state' });
    expect(atOp(end.url)).toBe(true);
    expect(end.url.toString()).not.toContain('only-state');
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('OIDCCRpInitiatedLogoutQueryAddedToPostLogoutRedirectUri (oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri): an OP error page, no redirect', async () => {
    const { browser, tokens } = await signInAndRedeem(op, op.basic);
    const end = await endSession(browser, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: `${POST_LOGOUT}?added=1`,
      state: 'xyz',
    });
    expect(atOp(end.url)).toBe(true);
    expect(end.response.status).toBe(400);
    expect(await stillSignedIn(browser)).toBe(true);
  });
});
