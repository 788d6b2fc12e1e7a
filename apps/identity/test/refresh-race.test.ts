/**
 * Refresh-token rotation under concurrency (issue #10, #16): twenty requests presenting one refresh token
 * at once get exactly one successor; the other nineteen are `invalid_grant`, and as for any reuse the whole
 * grant is revoked, so the winner's successor stops working too. The same for an authorization code.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import {
  SPA_REDIRECT,
  loginThroughForm,
  spaTokenRequest,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

describeEachDatabase('concurrent refresh and code redemption', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db);
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  const post = (body: Record<string, string>) => spaTokenRequest(t.fetch, t.identity.issuer, body);

  it('lets one of twenty concurrent refreshes win, refuses the rest, and revokes the grant', async () => {
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const tokens = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const refreshToken = tokens.refresh_token!;

    const answers = await Promise.all(
      Array.from({ length: 20 }, () => post({ grant_type: 'refresh_token', refresh_token: refreshToken })),
    );
    const winners = answers.filter((answer) => answer.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 400 && answer.body.error === 'invalid_grant')).toHaveLength(19);
    // Reuse revoked the grant: the winner's successor is refused as well.
    const successor = await post({ grant_type: 'refresh_token', refresh_token: winners[0]!.body.refresh_token! });
    expect([successor.status, successor.body.error]).toEqual([400, 'invalid_grant']);
  });

  it('redeems an authorization code once when ten requests race for it', async () => {
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const code = callback.searchParams.get('code')!;
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        post({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: SPA_REDIRECT }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, ...Array(9).fill(400)]);
  });
});
