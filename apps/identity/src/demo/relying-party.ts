/**
 * The demo relying party (identity.md "Demo mode"), served only with `--demo` at `/demo/rp`: a person
 * signs in as the public client `demo-spa` (authorization code + PKCE, like any app would), sees the ID
 * and access token claims, then has the KMS encrypt and decrypt a text with that access token. The token
 * is DPoP-bound (RFC 9449): each session has its own key pair, every token request and KMS call carries
 * a proof, and Identity's nonce is sent back when it asks for one. Pages are server-rendered without
 * scripts; the RP's state lives in a short-lived in-memory session (demo only).
 */
import { createHash, randomBytes } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { decodeJwt, generateKeyPair } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { ValidationError } from '@cryptoutil/infra';
import { createDpopProof, type DpopKeyPair } from '@cryptoutil/jose-authority';
import { assertCsrf, cookieValue, csrfToken } from '../interactions/csrf.js';
import { renderRpPage, type RpView } from './relying-party-views.js';

export const DEMO_RP_CLIENT = 'demo-spa';
const COOKIE = '__Host-demo-rp';
const SESSION_TTL_MS = 30 * 60_000;
const MAX_SESSIONS = 1000;
const SCOPE = 'openid profile kms:read kms:encrypt kms:decrypt';
const DEMO_KEY = 'demo-encryption-aes256';

export interface RelyingPartyOptions {
  issuer: string;
  /** The KMS base URL (the resource server Identity issues tokens for). */
  kmsUrl: string;
  /** Trusted for calls to Identity's own token endpoint and to the KMS. */
  rootCaPem: string;
}

interface RpSession {
  verifier: string;
  /** The key the session's tokens are bound to (DPoP). */
  dpopKeys: DpopKeyPair;
  state: string;
  idToken?: string;
  accessToken?: string;
  result?: RpView['result'];
  expires: number;
}

export function relyingPartyRouter(options: RelyingPartyOptions): Router {
  const router = Router();
  const sessions = new Map<string, RpSession>();
  const agent = new Agent({ connect: { ca: options.rootCaPem } });
  const callback = `${options.issuer}/demo/rp/callback`;
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  const sessionOf = (req: Request): RpSession | undefined => {
    const id = cookieValue(req, COOKIE);
    const session = id === undefined ? undefined : sessions.get(id);
    return session && session.expires > Date.now() ? session : undefined;
  };
  const render = (req: Request, res: Response, session: RpSession | undefined, status = 200) => {
    const claims = (token: string | undefined) => (token ? (decodeJwt(token) as Record<string, unknown>) : undefined);
    res
      .status(status)
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(
        renderRpPage({
          csrf: csrfToken(req, res),
          ...(session?.idToken ? { idClaims: claims(session.idToken) } : {}),
          ...(session?.accessToken ? { accessClaims: claims(session.accessToken) } : {}),
          ...(session?.result ? { result: session.result } : {}),
        }),
      );
  };

  router.get('/demo/rp', (req, res) => render(req, res, sessionOf(req)));

  router.get('/demo/rp/start', async (_req, res) => {
    if (sessions.size >= MAX_SESSIONS) {
      for (const [id, session] of sessions) if (session.expires <= Date.now()) sessions.delete(id);
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    }
    const id = randomBytes(24).toString('base64url');
    const session: RpSession = {
      verifier: randomBytes(32).toString('base64url'),
      dpopKeys: await generateKeyPair('ES256'),
      state: randomBytes(16).toString('base64url'),
      expires: Date.now() + SESSION_TTL_MS,
    };
    sessions.set(id, session);
    res.cookie(COOKIE, id, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
    const url = new URL(`${options.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: DEMO_RP_CLIENT,
      response_type: 'code',
      redirect_uri: callback,
      scope: SCOPE,
      state: session.state,
      code_challenge: createHash('sha256').update(session.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    res.redirect(303, url.toString());
  });

  router.get('/demo/rp/callback', async (req, res) => {
    const session = sessionOf(req);
    const { code, state, error } = req.query;
    if (!session || typeof state !== 'string' || state !== session.state) {
      throw new ValidationError('This sign-in did not start here, or it expired; start again at /demo/rp.');
    }
    if (typeof error === 'string' || typeof code !== 'string') {
      throw new ValidationError(`The sign-in ended without a code (${String(error ?? 'no code')}).`);
    }
    const tokenUrl = `${options.issuer}/token`;
    const tokenRequest = async (nonce?: string) =>
      undiciFetch(tokenUrl, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await createDpopProof(session.dpopKeys, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) }),
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: callback,
          client_id: DEMO_RP_CLIENT,
          code_verifier: session.verifier,
        }).toString(),
      });
    let answer = await tokenRequest();
    // RFC 9449 §8: Identity asks for its nonce (400 use_dpop_nonce + DPoP-Nonce); the code is not used yet.
    const nonce = answer.headers.get('dpop-nonce');
    if (answer.status === 400 && nonce) answer = await tokenRequest(nonce);
    const tokens = (await answer.json()) as { id_token?: string; access_token?: string; error?: string };
    if (!tokens.access_token) throw new ValidationError(`The token request failed (${tokens.error ?? answer.status}).`);
    session.idToken = tokens.id_token;
    session.accessToken = tokens.access_token;
    session.state = '';
    res.redirect(303, '/demo/rp');
  });

  router.post('/demo/rp/encrypt', form, async (req, res) => {
    assertCsrf(req);
    const session = sessionOf(req);
    if (!session?.accessToken) throw new ValidationError('Sign in first.');
    const text = String((req.body as { text?: unknown }).text ?? '').slice(0, 4096);
    session.result = await encryptAndDecrypt(options, agent, session.accessToken, session.dpopKeys, text);
    render(req, res, session);
  });

  return router;
}

/** What the demo shows: each KMS call with its status, so a refusal (403, 503) is visible too. */
async function encryptAndDecrypt(
  options: RelyingPartyOptions,
  agent: Agent,
  accessToken: string,
  dpopKeys: DpopKeyPair,
  text: string,
): Promise<NonNullable<RpView['result']>> {
  const api = `${options.kmsUrl}/service/api/v1`;
  const call = async (path: string, init: { method?: string; body?: string } = {}) =>
    undiciFetch(`${api}${path}`, {
      method: init.method ?? 'GET',
      dispatcher: agent,
      headers: {
        // A DPoP-bound token goes with a fresh proof for this method and URL; Bearer only if unbound.
        ...((decodeJwt(accessToken).cnf as { jkt?: string } | undefined)?.jkt
          ? {
              authorization: `DPoP ${accessToken}`,
              dpop: await createDpopProof(dpopKeys, { htm: init.method ?? 'GET', htu: `${api}${path}`, accessToken }),
            }
          : { authorization: `Bearer ${accessToken}` }),
        ...(init.body === undefined ? {} : { 'content-type': 'text/plain' }),
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
  try {
    const found = await call(`/elastickeys?name=${DEMO_KEY}`);
    const page = (await found.json()) as { items?: { elastic_key_id: string }[]; detail?: string };
    const keyId = page.items?.[0]?.elastic_key_id;
    if (!keyId)
      return { steps: [`GET /elastickeys?name=${DEMO_KEY} → ${found.status} ${page.detail ?? 'no such key'}`] };
    const encrypted = await call(`/elastickey/${keyId}/encrypt?context=demo-rp`, { method: 'POST', body: text });
    const jwe = await encrypted.text();
    const steps = [`POST /elastickey/${keyId}/encrypt → ${encrypted.status}`];
    if (!encrypted.ok) return { steps };
    const decrypted = await call(`/elastickey/${keyId}/decrypt?context=demo-rp`, { method: 'POST', body: jwe });
    const plaintext = await decrypted.text();
    steps.push(`POST /elastickey/${keyId}/decrypt → ${decrypted.status}`);
    return { steps, jwe, ...(decrypted.ok ? { plaintext } : {}) };
  } catch {
    return { steps: [`The KMS at ${options.kmsUrl} cannot be reached.`] };
  }
}
