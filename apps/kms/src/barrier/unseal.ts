/**
 * Unseal keys (kms.md "Barrier"): M secret files are given, any N of them must unseal.
 * One unseal key is derived with HKDF-SHA256 from every N-combination of the secrets, and
 * the root key is stored wrapped under each. Secrets are ordered by fingerprint inside a
 * combination, so the order in which files are listed never matters. Unseal keys live in
 * memory only.
 */
import { createHash, hkdfSync } from 'node:crypto';

export type UnsealMode = 'n-of-m' | 'simple' | 'dev';

export interface UnsealKey {
  /** Identifies the combination of secrets (hex SHA-256 of their fingerprints). */
  readonly id: string;
  /** 256-bit AES key-wrapping key as an oct JWK. */
  readonly jwk: { kty: 'oct'; k: string; kid: string; alg: 'A256KW' };
}

export class UnsealError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'UnsealError';
    this.code = code;
  }
}

/** Public, fixed and loudly insecure: `dev` mode exists so a laptop can start with no secret files. */
export const DEV_UNSEAL_SECRET = 'cryptoutil-dev-unseal-secret-NOT-FOR-PRODUCTION-0000000000';
const MIN_SECRET_BYTES = 32;
const HKDF_SALT = Buffer.from('cryptoutil/kms/unseal/v1');

function fingerprint(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Every k-combination of `items`, in lexicographic order of indices. */
export function combinations<T>(items: readonly T[], k: number): T[][] {
  const result: T[][] = [];
  const pick = (start: number, chosen: T[]): void => {
    if (chosen.length === k) {
      result.push([...chosen]);
      return;
    }
    for (let i = start; i <= items.length - (k - chosen.length); i++) {
      chosen.push(items[i] as T);
      pick(i + 1, chosen);
      chosen.pop();
    }
  };
  if (k > 0 && k <= items.length) pick(0, []);
  return result;
}

function deriveFromCombination(secrets: readonly Buffer[]): UnsealKey {
  const ordered = [...secrets].sort((a, b) => fingerprint(a).localeCompare(fingerprint(b)));
  const id = createHash('sha256').update(ordered.map(fingerprint).join(':')).digest('hex');
  // Length-prefix each secret so that different splits of the same bytes never collide.
  const ikm = Buffer.concat(
    ordered.flatMap((secret) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(secret.length);
      return [length, secret];
    }),
  );
  const key = Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, `unseal-key:${id}`, 32));
  return { id, jwk: { kty: 'oct', k: key.toString('base64url'), kid: id, alg: 'A256KW' } };
}

export interface UnsealPolicy {
  mode: UnsealMode;
  /** N: how many secrets unseal (n-of-m only). */
  threshold: number;
  /** M: how many secrets exist (n-of-m only). */
  shares: number;
}

/** Checks the given secrets against the policy and returns the effective secrets and threshold. */
function effectiveSecrets(policy: UnsealPolicy, secrets: readonly Buffer[]): { secrets: Buffer[]; threshold: number } {
  if (policy.mode === 'dev') return { secrets: [Buffer.from(DEV_UNSEAL_SECRET)], threshold: 1 };
  const threshold = policy.mode === 'simple' ? 1 : policy.threshold;
  if (policy.mode === 'n-of-m' && (threshold < 1 || threshold > policy.shares)) {
    throw new UnsealError(
      'invalid_unseal_policy',
      `unseal threshold ${threshold} must be between 1 and ${policy.shares}`,
    );
  }
  const unique = new Map(secrets.map((secret) => [fingerprint(secret), secret]));
  if (unique.size !== secrets.length) {
    throw new UnsealError('duplicate_unseal_secret', 'two unseal secret files have the same content');
  }
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_BYTES) {
      throw new UnsealError('weak_unseal_secret', `every unseal secret needs at least ${MIN_SECRET_BYTES} bytes`);
    }
  }
  if (secrets.length < threshold) {
    throw new UnsealError(
      'too_few_unseal_secrets',
      `${secrets.length} unseal secret(s) given, ${threshold} needed to unseal`,
    );
  }
  return { secrets: [...secrets], threshold };
}

/** Unseal keys for every N-combination of the given secrets (all M at first start, any ≥ N later). */
export function deriveUnsealKeys(policy: UnsealPolicy, secrets: readonly Buffer[]): UnsealKey[] {
  const effective = effectiveSecrets(policy, secrets);
  return combinations(effective.secrets, effective.threshold).map(deriveFromCombination);
}

/** Creating a hierarchy (or rotating the root) must cover every combination, so it needs all M secrets. */
export function assertAllShares(policy: UnsealPolicy, secrets: readonly Buffer[]): void {
  if (policy.mode === 'n-of-m' && secrets.length !== policy.shares) {
    throw new UnsealError(
      'all_unseal_secrets_required',
      `this operation needs all ${policy.shares} unseal secrets, ${secrets.length} given`,
    );
  }
}
