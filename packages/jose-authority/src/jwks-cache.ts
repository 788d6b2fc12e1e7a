/**
 * The issuer's metadata (OIDC discovery) and JWKS, kept in memory (integration.md): keys are reused for
 * `ttlMs`; an unknown `kid` triggers one refetch at most once per `cooldownMs`; concurrent refreshes
 * share one request; when the issuer cannot be reached, the keys already held keep working.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { TokenValidationError } from './token-errors.js';

export interface IssuerMetadata {
  issuer: string;
  jwks_uri: string;
  introspection_endpoint?: string;
}

export interface JwksCacheOptions {
  issuer: string;
  fetch: typeof fetch;
  ttlMs: number;
  cooldownMs: number;
  timeoutMs: number;
  now: () => number;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

async function getJson(fetcher: typeof fetch, url: string, timeoutMs: number): Promise<unknown> {
  const response = await fetcher(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

export class JwksCache {
  #metadata: IssuerMetadata | undefined;
  #resolver: KeyResolver | undefined;
  #keyCount = 0;
  #fetchedAt = -Infinity;
  #forcedAt = -Infinity;
  #inflight: Promise<void> | undefined;
  #fetches = 0;

  constructor(private readonly options: JwksCacheOptions) {}

  /** How many JWKS downloads this cache has made (for readiness and tests). */
  get fetches(): number {
    return this.#fetches;
  }

  async metadata(): Promise<IssuerMetadata> {
    if (!this.#metadata) await this.refresh();
    return this.#metadata as IssuerMetadata;
  }

  /** Readiness: the keys are fresh, or a refresh succeeds now. */
  async ready(): Promise<{ keys: number; age_ms: number }> {
    if (this.options.now() - this.#fetchedAt > this.options.ttlMs) await this.refresh();
    return { keys: this.#keyCount, age_ms: Math.round(this.options.now() - this.#fetchedAt) };
  }

  /** The key for a token's protected header (the `jose` key-resolver shape). */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    await this.#ensureFresh();
    try {
      return await (this.#resolver as KeyResolver)(header, token);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw error;
      // An unknown kid may be a key the issuer just rotated in: refetch, but not more than once per cooldown.
      // If the issuer cannot be asked, the token is not known to be bad: 503 identity_unavailable, not 401.
      if (this.options.now() - this.#forcedAt < this.options.cooldownMs) {
        if (this.#forcedFailure) throw unavailable(this.#forcedFailure);
        throw error;
      }
      this.#forcedAt = this.options.now();
      try {
        await this.refresh();
        this.#forcedFailure = undefined;
      } catch (failure) {
        this.#forcedFailure = failure ?? new Error('refresh failed');
        throw unavailable(failure);
      }
      return (this.#resolver as KeyResolver)(header, token);
    }
  };

  /** Why the last refetch for an unknown kid failed (cleared by a successful one). */
  #forcedFailure: unknown;

  async #ensureFresh(): Promise<void> {
    if (this.options.now() - this.#fetchedAt <= this.options.ttlMs) return;
    try {
      await this.refresh();
    } catch (error) {
      // Stale keys beat no keys: tokens signed by them keep validating while the issuer is away.
      if (!this.#resolver) {
        throw new TokenValidationError(
          'identity_unavailable',
          'The token issuer cannot be reached.',
          {},
          { cause: error },
        );
      }
    }
  }

  /** Downloads metadata and keys; concurrent callers share one download. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#download().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #download(): Promise<void> {
    const { fetch: fetcher, issuer, timeoutMs } = this.options;
    if (!this.#metadata) {
      const metadata = (await getJson(
        fetcher,
        `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
        timeoutMs,
      )) as Partial<IssuerMetadata>;
      if (metadata.issuer !== issuer || typeof metadata.jwks_uri !== 'string') {
        throw new Error(`the discovery document does not describe issuer ${issuer}`);
      }
      this.#metadata = metadata as IssuerMetadata;
    }
    const jwks = (await getJson(fetcher, this.#metadata.jwks_uri, timeoutMs)) as JSONWebKeySet;
    this.#fetches += 1;
    if (!Array.isArray(jwks.keys)) throw new Error('the JWKS has no keys array');
    this.#resolver = createLocalJWKSet(jwks);
    this.#keyCount = jwks.keys.length;
    this.#fetchedAt = this.options.now();
  }
}

function unavailable(cause: unknown): TokenValidationError {
  return new TokenValidationError(
    'identity_unavailable',
    'The token names a key the issuer has not published here yet, and the issuer cannot be reached.',
    {},
    { cause },
  );
}
