/**
 * No usable credential at rest (issue #10, secret hygiene): after a sign-in, a code exchange, a refresh
 * and a client-credentials grant, no column of any table holds the authorization code, an access or
 * refresh token, a password or a client secret; the tokens still work (they are found by their hash).
 * Rows written by a version that kept ids in clear are converted at start without losing the token. Device
 * codes too, though the provider also finds them by user code (their payload keeps them sealed).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { formAction, formValue } from '@cryptoutil/infra';
import { describeEachDatabase, storedSecretFindings } from '@cryptoutil/infra/testing';
import { hashStoredCredentials, storedOidcId } from '../src/data/oidc-adapter.js';
import { credentialSealer } from '../src/domain/credential-sealer.js';
import { atRestKey } from '../src/domain/signing-keys.js';
import { approveDevice, deviceAuthorization, enterUserCode, pollDevice } from './device-flow.js';
import {
  DEMO_WEB_SECRET,
  KMS_SERVICE_SECRET,
  loginThroughForm,
  spaTokenRequest,
  startPkce,
  startTestIdentity,
  type TestIdentity,
} from './harness.js';

const sealer = credentialSealer(atRestKey('test-at-rest-key-0123456789abcdef0123', 'device-codes'));

describeEachDatabase('credentials at rest', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db);
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  const refresh = (refreshToken: string) =>
    spaTokenRequest(t.fetch, t.identity.issuer, { grant_type: 'refresh_token', refresh_token: refreshToken });
  const findings = (secrets: string[]) => storedSecretFindings(t.identity.db, secrets, db.schema ? [db.schema] : []);

  it('stores no code, token, password or client secret, and the tokens still work', async () => {
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const code = callback.searchParams.get('code')!;
    const tokens = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const rotated = await refresh(tokens.refresh_token!);
    expect(rotated.status).toBe(200);
    const service = await t.discover('kms-service', client.ClientSecretBasic(KMS_SERVICE_SECRET));
    const machine = await client.clientCredentialsGrant(service, { scope: 'kms:encrypt' });

    const used = [
      code,
      tokens.access_token,
      tokens.refresh_token!,
      rotated.body.access_token!,
      rotated.body.refresh_token!,
      machine.access_token,
      'demo-user-password',
      KMS_SERVICE_SECRET,
      DEMO_WEB_SECRET,
      'test-cookie-key-0123456789abcdef0123',
      'test-at-rest-key-0123456789abcdef0123',
    ];
    // The scan itself finds what is there: the user's name is stored, and is found.
    expect(await findings(['demo-user'])).not.toEqual([]);
    expect(await findings(used)).toEqual([]);
    // Found by hash: the latest refresh token still rotates.
    expect((await refresh(rotated.body.refresh_token!)).status).toBe(200);
  });

  it('converts a refresh token stored in clear by an older version, and it keeps working', async () => {
    const spa = await t.discover('demo-spa', client.None());
    const { verifier, state, url } = await startPkce(spa);
    const callback = await loginThroughForm(t, url, 'demo-user', 'demo-user-password');
    const tokens = await client.authorizationCodeGrant(spa, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const token = tokens.refresh_token!;
    // What an older version wrote: the token itself as the id and as the payload's jti.
    const [row] = await t.identity.db.all<{ payload: string }>(
      sql`SELECT payload FROM identity_oidc_models WHERE model = 'RefreshToken' AND id = ${storedOidcId('RefreshToken', token)}`,
    );
    const legacy = JSON.stringify({ ...(JSON.parse(row!.payload) as object), jti: token });
    await t.identity.db.run(sql`UPDATE identity_oidc_models SET id = ${token}, payload = ${legacy}
      WHERE model = 'RefreshToken' AND id = ${storedOidcId('RefreshToken', token)}`);
    expect(await findings([token])).not.toEqual([]);

    expect(await hashStoredCredentials(t.identity.db, sealer)).toBe(1);
    expect(await hashStoredCredentials(t.identity.db, sealer)).toBe(0);
    expect(await findings([token])).toEqual([]);
    expect((await refresh(token)).status).toBe(200);
  });

  it('stores a device code only hashed (sealed where the provider needs it back), and the flow still works', async () => {
    const device = await deviceAuthorization(t);
    // Pending, entered and confirmed (an interaction names it), approved: never in clear.
    expect((await pollDevice(t, device.device_code)).body.error).toBe('authorization_pending');
    expect(await findings([device.device_code])).toEqual([]);
    const { browser, page } = await enterUserCode(t, device.user_code);
    const login = await browser.follow(formAction(page.html), {
      form: { xsrf: formValue(page.html, 'xsrf'), user_code: device.user_code, confirm: 'yes' },
    });
    expect(await login.response.text()).toContain('Sign in');
    expect(await findings([device.device_code])).toEqual([]);

    const second = await deviceAuthorization(t);
    expect((await approveDevice(t, second.user_code)).html).toContain('Device connected');
    expect(await findings([device.device_code, second.device_code])).toEqual([]);
    const tokens = await pollDevice(t, second.device_code);
    expect(tokens.status).toBe(200);
    expect(
      await findings([second.device_code, String(tokens.body.access_token), String(tokens.body.refresh_token)]),
    ).toEqual([]);
  });

  it('converts a device code stored in clear by an older version, and the device still gets its tokens', async () => {
    const device = await deviceAuthorization(t);
    const [row] = await t.identity.db.all<{ payload: string }>(
      sql`SELECT payload FROM identity_oidc_models WHERE model = 'DeviceCode' AND id = ${storedOidcId('DeviceCode', device.device_code)}`,
    );
    const { sealedJti: _sealed, ...rest } = JSON.parse(row!.payload) as { sealedJti?: string };
    const legacy = JSON.stringify({ ...rest, jti: device.device_code });
    await t.identity.db.run(sql`UPDATE identity_oidc_models SET id = ${device.device_code}, payload = ${legacy}
      WHERE model = 'DeviceCode' AND id = ${storedOidcId('DeviceCode', device.device_code)}`);
    expect(await findings([device.device_code])).not.toEqual([]);
    expect(await hashStoredCredentials(t.identity.db, sealer)).toBe(1);
    expect(await findings([device.device_code])).toEqual([]);
    await approveDevice(t, device.user_code);
    expect((await pollDevice(t, device.device_code)).status).toBe(200);
  });
});
