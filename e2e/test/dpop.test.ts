/**
 * DPoP end to end (identity.md "Beyond the anchors", RFC 9449), driven by `oauth4webapi`'s DPoP client as
 * any application would: Identity binds a client-credentials token to the client's key (answering its
 * nonce), the KMS accepts it with a proof and refuses it as Bearer, with another key's proof, with a
 * replayed proof and with a proof for another method, URL or token. On PostgreSQL the KMS runs as two
 * processes behind a round-robin proxy, and a proof used at one is refused by the other.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { testPostgresUrl } from '@cryptoutil/infra/testing';
import { KMS_SERVICE_SECRET_FILE, startStack, type Stack } from './stack.js';

const POSTGRES = Boolean(process.env.TEST_DATABASE_URL);

interface Answer {
  status: number;
  challenge: string;
  body: string;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  const suite = engine === 'postgres' && !POSTGRES ? describe.skip : describe;
  const kmsReplicas = engine === 'postgres' ? 2 : 1;
  suite(`DPoP-bound tokens from Identity at the KMS [${engine}, ${kmsReplicas} KMS process(es)]`, () => {
    let stack: Stack;
    let as: oauth.AuthorizationServer;
    const kmsService: oauth.Client = { client_id: 'kms-service' };
    let clientAuth: oauth.ClientAuth;
    let keyPair: CryptoKeyPair;
    let dpop: oauth.DPoPHandle;
    let accessToken: string;
    let keyId: string;
    /** The DPoP header of the last request sent through `capturing`. */
    let lastProof = '';

    const fetchOptions = () => ({ [oauth.customFetch]: stack.fetch as unknown as typeof fetch });
    const capturing = ((url: string, init: RequestInit) => {
      lastProof = new Headers(init.headers).get('dpop') ?? '';
      return stack.fetch(url, init);
    }) as unknown as typeof fetch;

    /** A client-credentials token bound to `handle`'s key; Identity's nonce is answered once. */
    const boundToken = async (scope: string, handle: oauth.DPoPHandle): Promise<string> => {
      const grant = () =>
        oauth.clientCredentialsGrantRequest(as, kmsService, clientAuth, new URLSearchParams({ scope }), {
          DPoP: handle,
          ...fetchOptions(),
        });
      let result: oauth.TokenEndpointResponse;
      try {
        result = await oauth.processClientCredentialsResponse(as, kmsService, await grant());
      } catch (error) {
        if (!oauth.isDPoPNonceError(error)) throw error;
        result = await oauth.processClientCredentialsResponse(as, kmsService, await grant());
      }
      expect(result.token_type).toBe('dpop');
      stack.secrets.add(result.access_token);
      return result.access_token;
    };

    /** A KMS call with `oauth4webapi`'s proof (optionally altered before signing); 401s are answers too. */
    const kms = async (
      method: string,
      path: string,
      options: { token?: string; handle?: oauth.DPoPHandle; body?: string; json?: boolean } = {},
    ): Promise<Answer> => {
      const url = new URL(`${stack.kms.publicUrl}/service/api/v1${path}`);
      const type = options.json ? 'application/json' : 'text/plain';
      const headers = new Headers(options.body === undefined ? {} : { 'content-type': type });
      let response: Response;
      try {
        response = await oauth.protectedResourceRequest(
          options.token ?? accessToken,
          method,
          url,
          headers,
          options.body ?? null,
          { DPoP: options.handle ?? dpop, [oauth.customFetch]: capturing },
        );
      } catch (error) {
        if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
        response = error.response;
      }
      return {
        status: response.status,
        challenge: response.headers.get('www-authenticate') ?? '',
        body: await response.text(),
      };
    };
    /** Sends exactly these headers (e.g. a captured proof again) to one KMS process. */
    const raw = async (base: string, method: string, path: string, headers: Record<string, string>) => {
      const res = await stack.fetch(`${base}/service/api/v1${path}`, { method, headers });
      return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body: await res.text() };
    };
    /** A handle on the same key whose proofs are altered right before signing. */
    const altered = (change: (payload: Record<string, unknown>) => void) =>
      oauth.DPoP(kmsService, keyPair, { [oauth.modifyAssertion]: (_header, payload) => change(payload) });

    beforeAll(async () => {
      const url = engine === 'sqlite' ? 'sqlite' : await testPostgresUrl();
      stack = await startStack(
        { url: url ?? 'sqlite', schemaPrefix: `e2e_dpop_${Date.now()}` },
        { replicas: { identity: 1, kms: kmsReplicas } },
      );
      const issuer = new URL(stack.identity.publicUrl);
      as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, fetchOptions()));
      clientAuth = oauth.ClientSecretBasic((await readFile(KMS_SERVICE_SECRET_FILE, 'utf8')).trim());
      keyPair = await oauth.generateKeyPair('ES256');
      dpop = oauth.DPoP(kmsService, keyPair);
      const admin = await boundToken('kms:admin', dpop);
      const created = await kms('POST', '/elastickey', {
        token: admin,
        json: true,
        body: JSON.stringify({ name: `e2e-dpop-${engine}`, description: 'e2e', algorithm: 'A256GCM/dir' }),
      });
      expect(created.status).toBe(201);
      keyId = String((JSON.parse(created.body) as { elastic_key_id: string }).elastic_key_id);
      accessToken = await boundToken('kms:encrypt kms:decrypt kms:read', dpop);
    });
    afterAll(async () => stack?.stop());

    /** A proof made by `handle` for a request, captured without sending it anywhere that counts. */
    const proofFor = async (handle: oauth.DPoPHandle, method: string, path: string, token: string) => {
      let proof = '';
      const url = new URL(`${stack.kms.publicUrl}/service/api/v1${path}`);
      await oauth
        .protectedResourceRequest(token, method, url, new Headers(), null, {
          DPoP: handle,
          [oauth.customFetch]: (async (_url: string, init: RequestInit) => {
            proof = new Headers(init.headers).get('dpop') ?? '';
            return new Response(null, { status: 204 });
          }) as unknown as typeof fetch,
        })
        .catch(() => undefined);
      return proof;
    };

    it('issues a token bound to the client key and the KMS encrypts and decrypts with it under DPoP', async () => {
      expect(decodeJwt(accessToken).cnf).toEqual({ jkt: await dpop.calculateThumbprint() });
      const jwe = await kms('POST', `/elastickey/${keyId}/encrypt?context=e2e`, { body: 'dpop plaintext' });
      stack.secrets.add('dpop plaintext');
      expect(jwe.status).toBe(200);
      const plain = await kms('POST', `/elastickey/${keyId}/decrypt?context=e2e`, { body: jwe.body });
      expect([plain.status, plain.body]).toEqual([200, 'dpop plaintext']);
    });

    it('refuses the same token as Bearer with 401 and a DPoP invalid_token challenge with algs', async () => {
      const res = await raw(stack.kms.publicUrl, 'GET', '/elastickeys', { authorization: `Bearer ${accessToken}` });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(
        /^Bearer realm="kms", DPoP realm="kms", error="invalid_token", error_description="[^"]+", algs="ES256 /,
      );
    });

    it('refuses the stolen token with a proof signed by the thief key', async () => {
      const thief = oauth.DPoP(kmsService, await oauth.generateKeyPair('ES256'));
      const res = await kms('GET', '/elastickeys', { handle: thief });
      expect(res.status).toBe(401);
      expect(res.challenge).toContain('DPoP realm="kms", error="invalid_dpop_proof"');
      expect((await kms('GET', '/elastickeys')).status).toBe(200);
    });

    it('refuses a replayed proof, also at another KMS process sharing the database', async () => {
      expect((await kms('GET', '/elastickeys')).status).toBe(200);
      const replayed = { authorization: `DPoP ${accessToken}`, dpop: lastProof };
      const again = await raw(stack.kms.publicUrl, 'GET', '/elastickeys', replayed);
      expect([again.status, again.challenge]).toEqual([401, expect.stringContaining('invalid_dpop_proof')]);
      // Straight to each process (the proof names the proxy's URL, which every process is configured with).
      const fresh = await proofFor(dpop, 'GET', '/elastickeys', accessToken);
      const [first, ...others] = stack.replicas.kms;
      expect((await raw(first!.publicUrl, 'GET', '/elastickeys', { ...replayed, dpop: fresh })).status).toBe(200);
      for (const other of others) {
        const elsewhere = await raw(other.publicUrl, 'GET', '/elastickeys', { ...replayed, dpop: fresh });
        expect([elsewhere.status, elsewhere.body]).toEqual([401, expect.stringContaining('already used')]);
      }
    });

    it('refuses a proof for another method, another URL or another token', async () => {
      const wrongMethod = await kms('GET', '/elastickeys', { handle: altered((payload) => (payload.htm = 'POST')) });
      const wrongUrl = await kms('GET', '/elastickeys', {
        handle: altered((payload) => (payload.htu = `${stack.kms.publicUrl}/service/api/v1/materialkeys`)),
      });
      const wrongToken = await kms('GET', '/elastickeys', {
        handle: altered((payload) => (payload.ath = 'A'.repeat(43))),
      });
      for (const res of [wrongMethod, wrongUrl, wrongToken]) {
        expect([res.status, res.challenge]).toEqual([401, expect.stringContaining('error="invalid_dpop_proof"')]);
      }
      expect(JSON.parse(wrongUrl.body)).toMatchObject({
        code: 'invalid_dpop_proof',
        detail: expect.stringContaining('URL'),
      });
    });
  });
}
