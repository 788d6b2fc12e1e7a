/**
 * DPoP proofs at a resource server (RFC 9449 §4.3, §7): one `DPoP` header holding a `dpop+jwt` signed
 * with an asymmetric algorithm by the public `jwk` in its header, for this request's method (`htm`) and
 * URL (`htu`, without query or fragment, compared after RFC 3986 normalisation), recent (`iat`), bound to
 * the access token (`ath`) and to the key the token names (`cnf.jkt`), and used once (`jti`, remembered
 * through a pluggable store so several instances can share it).
 */
import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { TokenValidationError } from './token-errors.js';

/** Remembers proof ids until they expire; a second `remember` of a live id is a replay. */
export interface DpopReplayStore {
  /** True when `id` is new (and is now remembered until `expiresAtMs`), false when it was seen. */
  remember(id: string, expiresAtMs: number): Promise<boolean>;
}

/** One process's memory: enough for a single instance; several instances need a shared store. */
export class MemoryDpopReplayStore implements DpopReplayStore {
  readonly #seen: LRUCache<string, number>;
  readonly #now: () => number;

  constructor(options: { max?: number; now?: () => number } = {}) {
    this.#seen = new LRUCache({ max: options.max ?? 100_000 });
    this.#now = options.now ?? Date.now;
  }

  async remember(id: string, expiresAtMs: number): Promise<boolean> {
    const known = this.#seen.get(id);
    if (known !== undefined && known > this.#now()) return false;
    this.#seen.set(id, expiresAtMs);
    return true;
  }
}

export interface DpopProofOptions {
  replay: DpopReplayStore;
  /** How old a proof's `iat` may be (default 60 s). */
  maxAgeSeconds?: number;
  /** How far in the future `iat` may be, for clock skew (default 5 s). */
  futureSkewSeconds?: number;
  /** Only asymmetric algorithms are accepted, whatever is listed here. */
  algorithms?: readonly string[];
  now?: () => number;
}

/** What the request carried and what the proof must match. */
export interface DpopPresentation {
  /** The `DPoP` header (undefined when absent). */
  proof: string | undefined;
  /** The request method (`htm`). */
  method: string;
  /** The URL the client called, as the resource server's public URL plus the request path (`htu`). */
  url: string;
}

/**
 * Asymmetric JWS algorithms only (RFC 9449 §4.2: never `none` or HMAC), most preferred first; `Ed25519`
 * is the fully-specified name (RFC 9864) that current clients sign EdDSA proofs with.
 */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = [
  'ES256',
  'ES384',
  'ES512',
  'Ed25519',
  'EdDSA',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
];

/** A proof larger than this is refused before it is parsed. */
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const refused = (description: string, claim?: string) =>
  new TokenValidationError('invalid_dpop_proof', description, { scheme: 'DPoP', ...(claim ? { claim } : {}) });

/** Upper-case hex in percent-encodings, unreserved characters decoded (RFC 3986 §6.2.2). */
function normalisePercentEncoding(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_match, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}

/**
 * The `htu` form of a URL (RFC 9449 §4.3): scheme and host lower-cased, default port dropped, dot
 * segments removed, percent-encodings normalised, no query and no fragment. Undefined if not a URL.
 */
export function normaliseHtu(url: string): string | undefined {
  const parsed = URL.parse(url);
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) return undefined;
  return `${parsed.protocol}//${parsed.host}${normalisePercentEncoding(parsed.pathname)}`;
}

/** The `htu` a request to `path` (query allowed, ignored) at a server published at `publicUrl` has. */
export function requestHtu(publicUrl: string, path: string): string {
  const base = new URL(publicUrl);
  return `${base.origin}${base.pathname.replace(/\/$/, '')}${path.split(/[?#]/)[0] ?? ''}`;
}

/** `ath`: the base64url SHA-256 of the access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

export class DpopProofVerifier {
  readonly algorithms: readonly string[];
  readonly #options: DpopProofOptions;

  constructor(options: DpopProofOptions) {
    this.#options = options;
    this.algorithms = (options.algorithms ?? DEFAULT_DPOP_ALGORITHMS).filter((alg) =>
      DEFAULT_DPOP_ALGORITHMS.includes(alg),
    );
  }

  /**
   * Resolves when the proof holds for this request, `accessToken` and the token's `cnf.jkt`; throws
   * `TokenValidationError` (`invalid_dpop_proof`) naming the rule that failed.
   */
  async verify(presentation: DpopPresentation, accessToken: string, jkt: string): Promise<void> {
    const proof = presentation.proof;
    if (!proof) throw refused('A DPoP-bound token needs a DPoP proof header.');
    if (proof.includes(',')) throw refused('Send exactly one DPoP proof.');
    if (proof.length > MAX_PROOF_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(proof)) {
      throw refused('The DPoP proof is malformed.');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch {
      throw refused('The DPoP proof is malformed.');
    }
    if (header.typ !== 'dpop+jwt') throw refused('The DPoP proof must have typ dpop+jwt.', 'typ');
    if (typeof header.alg !== 'string' || !this.algorithms.includes(header.alg)) {
      throw refused('The DPoP proof is signed with an algorithm that is not allowed.', 'alg');
    }
    const jwk = header.jwk as JWK | undefined;
    if (!jwk || typeof jwk !== 'object') throw refused('The DPoP proof must carry its public key (jwk).', 'jwk');
    if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) {
      throw refused('The DPoP proof jwk must be a public key.', 'jwk');
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, { algorithms: [...this.algorithms], typ: 'dpop+jwt' }));
    } catch (error) {
      if (error instanceof errors.JWSSignatureVerificationFailed) {
        throw refused('The DPoP proof signature does not verify.', 'signature');
      }
      throw refused('The DPoP proof cannot be verified.');
    }
    const { jti, htm, htu, iat, ath } = payload;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
      throw refused('The DPoP proof needs a jti.', 'jti');
    }
    if (htm !== presentation.method) throw refused('The DPoP proof is for another method.', 'htm');
    const expected = normaliseHtu(presentation.url);
    if (typeof htu !== 'string' || expected === undefined || normaliseHtu(htu) !== expected) {
      throw refused('The DPoP proof is for another URL.', 'htu');
    }
    const now = (this.#options.now ?? Date.now)();
    const maxAge = this.#options.maxAgeSeconds ?? 60;
    const skew = this.#options.futureSkewSeconds ?? 5;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw refused('The DPoP proof needs an iat.', 'iat');
    if (iat * 1000 < now - maxAge * 1000 || iat * 1000 > now + skew * 1000) {
      throw refused('The DPoP proof is too old or from the future.', 'iat');
    }
    if (ath !== accessTokenHash(accessToken)) throw refused('The DPoP proof is for another access token.', 'ath');
    if ((await calculateJwkThumbprint(jwk)) !== jkt) {
      throw refused('The DPoP proof is signed by another key than the token is bound to.', 'jkt');
    }
    // Last, so refused proofs never fill the store; the id is fixed-length whatever the client sent.
    const id = createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url');
    if (!(await this.#options.replay.remember(id, (iat + maxAge + skew) * 1000))) {
      throw refused('The DPoP proof was already used.', 'jti');
    }
  }
}
