/**
 * `demo all`: Identity issues `kms-service` tokens, the KMS validates them by JWKS and enforces their
 * scopes: a token with the scopes encrypts and decrypts, a token without `kms:encrypt` gets `403`; then
 * (when the services were started here, so the admin listener is reachable) the KMS audit chain is verified.
 */
import * as client from 'openid-client';
import type { Agent } from 'undici';
import { call } from './http.js';
import { serviceClient } from './identity-steps.js';
import { check, type Step } from './steps.js';

export function integrationSteps(dispatcher: Agent, issuer: string, kmsUrl: string, kmsAdminUrl?: string): Step[] {
  const api = `${kmsUrl}/service/api/v1`;
  const service = serviceClient(dispatcher, issuer);
  const state: { token?: string; key?: string; jwe?: string } = {};
  const step = (name: string, run: Step['run']): Step => ({ phase: 'integration', name, run });
  const bearer = () => ({ authorization: `Bearer ${state.token}` });

  return [
    step('token from Identity (kms:read kms:encrypt kms:decrypt)', async () => {
      state.token = (
        await client.clientCredentialsGrant(await service(), { scope: 'kms:read kms:encrypt kms:decrypt' })
      ).access_token;
      return 'kms-service access token';
    }),
    step('the KMS accepts it', async () => {
      const res = await call(dispatcher, 'GET', `${api}/elastickeys?name=demo-encryption-aes256`, {
        headers: bearer(),
      });
      check(res.status === 200, `GET /elastickeys answered ${res.status}: ${res.text.slice(0, 200)}`);
      const items = res.json<{ items: { elastic_key_id: string }[] }>().items;
      check(items[0], 'demo-encryption-aes256 is not visible to kms-service (its tenant)');
      state.key = items[0].elastic_key_id;
      return `sees demo-encryption-aes256 in its tenant`;
    }),
    step('encrypt and decrypt with the token', async () => {
      const text = 'across products';
      const jwe = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/encrypt`, {
        headers: bearer(),
        type: 'text/plain',
        body: text,
      });
      check(jwe.status === 200, `encrypt answered ${jwe.status}`);
      const back = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/decrypt`, {
        headers: bearer(),
        type: 'text/plain',
        body: jwe.text,
      });
      check(back.status === 200 && back.text === text, `decrypt answered ${back.status}`);
      state.jwe = jwe.text;
      return 'round trip';
    }),
    step('403 for a missing scope', async () => {
      const reader = (await client.clientCredentialsGrant(await service(), { scope: 'kms:read' })).access_token;
      const res = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/encrypt`, {
        headers: { authorization: `Bearer ${reader}` },
        type: 'text/plain',
        body: 'refused',
      });
      check(res.status === 403, `a kms:read token encrypting got ${res.status}, not 403`);
      check(res.json<{ code?: string }>().code === 'insufficient_scope', 'not insufficient_scope');
      return 'kms:read cannot encrypt: 403 insufficient_scope';
    }),
    // The admin listener needs a client certificate of the deployment: only when the services run here.
    ...(kmsAdminUrl
      ? [
          step('verify the KMS audit log', async () => {
            const verified = await call(dispatcher, 'GET', `${kmsAdminUrl}/admin/v1/audit/verify`);
            const result = verified.json<{ ok: boolean; records: number; brokenAt?: number; reason?: string }>();
            check(result.ok, `the audit chain is broken at record ${result.brokenAt}: ${result.reason}`);
            const refusals = await call(dispatcher, 'GET', `${kmsAdminUrl}/admin/v1/audit?event=kms.encrypt&size=1000`);
            const events = refusals.json<{ items: { outcome: string; reason: string | null }[] }>().items;
            check(
              events.some((event) => event.outcome === 'failure' && event.reason === 'insufficient_scope'),
              'the refused encrypt of the previous step is not in the audit log',
            );
            return `hash chain intact over ${result.records} records, the 403 recorded`;
          }),
        ]
      : []),
  ];
}
