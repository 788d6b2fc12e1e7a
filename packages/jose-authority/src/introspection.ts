/**
 * Revocation checks through the issuer's RFC 7662 introspection endpoint (integration.md): the modes
 * `sensitive-only`, `every-request` and `interval`; concurrent checks of one token share one call;
 * in `interval` mode an answer is reused for `intervalMs`, keyed by `jti`. An issuer that cannot be
 * asked is `identity_unavailable` (fail closed): the caller decides which operations need the answer.
 */
import { createHash } from 'node:crypto';
import type { JwksCache } from './jwks-cache.js';
import { TokenValidationError } from './token-errors.js';

export type RevocationMode = 'sensitive-only' | 'every-request' | 'interval' | 'off';

/** How the resource server authenticates to the introspection endpoint. */
export type IntrospectionAuth =
  | { method: 'client_secret_basic'; clientId: string; clientSecret: string }
  | { method: 'client_secret_post'; clientId: string; clientSecret: string }
  /** The `fetch` given to the validator presents the client certificate. */
  | { method: 'tls_client_auth'; clientId: string }
  | { method: 'api_key'; apiKey: string };

export interface RevocationOptions {
  mode: RevocationMode;
  intervalMs: number;
  auth?: IntrospectionAuth;
  fetch: typeof fetch;
  timeoutMs: number;
  now: () => number;
}

function authorization(auth: IntrospectionAuth): { headers: Record<string, string>; form: Record<string, string> } {
  switch (auth.method) {
    case 'client_secret_basic': {
      const pair = `${encodeURIComponent(auth.clientId)}:${encodeURIComponent(auth.clientSecret)}`;
      return { headers: { authorization: `Basic ${Buffer.from(pair).toString('base64')}` }, form: {} };
    }
    case 'client_secret_post':
      return { headers: {}, form: { client_id: auth.clientId, client_secret: auth.clientSecret } };
    case 'tls_client_auth':
      return { headers: {}, form: { client_id: auth.clientId } };
    case 'api_key':
      return { headers: { authorization: `ApiKey ${auth.apiKey}` }, form: {} };
  }
}

export class RevocationChecker {
  readonly #inflight = new Map<string, Promise<boolean>>();
  readonly #answers = new Map<string, { active: boolean; at: number }>();
  #calls = 0;

  constructor(
    private readonly options: RevocationOptions,
    private readonly jwks: JwksCache,
  ) {}

  /** How many introspection requests were made (for tests and metrics). */
  get calls(): number {
    return this.#calls;
  }

  /** Whether this request must ask the issuer, by mode and operation sensitivity. */
  needsCheck(sensitive: boolean): boolean {
    const { mode } = this.options;
    return mode === 'every-request' || mode === 'interval' || (mode === 'sensitive-only' && sensitive);
  }

  /** Resolves when the token is still active; throws `token_revoked` or `identity_unavailable`. */
  async assertActive(token: string, jti: string | undefined): Promise<void> {
    const key = jti ?? createHash('sha256').update(token).digest('base64url');
    const { mode, intervalMs, now } = this.options;
    const cached = mode === 'interval' ? this.#answers.get(key) : undefined;
    let active: boolean;
    if (cached && now() - cached.at < intervalMs) {
      active = cached.active;
    } else {
      let pending = this.#inflight.get(key);
      if (!pending) {
        pending = this.#introspect(token).finally(() => this.#inflight.delete(key));
        this.#inflight.set(key, pending);
      }
      active = await pending;
      if (mode === 'interval') this.#remember(key, active);
    }
    if (!active) throw new TokenValidationError('token_revoked', 'The token has been revoked.');
  }

  /** Keeps interval answers, dropping expired ones once the map grows (bounded by live tokens). */
  #remember(key: string, active: boolean): void {
    const { intervalMs, now } = this.options;
    if (this.#answers.size >= 10_000) {
      for (const [old, answer] of this.#answers) if (now() - answer.at >= intervalMs) this.#answers.delete(old);
      if (this.#answers.size >= 10_000) this.#answers.delete(this.#answers.keys().next().value as string);
    }
    this.#answers.set(key, { active, at: now() });
  }

  async #introspect(token: string): Promise<boolean> {
    const { auth, fetch: fetcher, timeoutMs } = this.options;
    this.#calls += 1;
    try {
      const endpoint = (await this.jwks.metadata()).introspection_endpoint;
      if (!endpoint) throw new Error('the issuer has no introspection endpoint');
      const credentials = auth ? authorization(auth) : { headers: {}, form: {} };
      const response = await fetcher(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          ...credentials.headers,
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token', ...credentials.form }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`introspection answered ${response.status}`);
      const answer = (await response.json()) as { active?: unknown };
      return answer.active === true;
    } catch (error) {
      throw new TokenValidationError(
        'identity_unavailable',
        'The token issuer cannot confirm the token is still valid.',
        {},
        { cause: error },
      );
    }
  }
}
