/**
 * Token signing keys (identity.md): ES256 and RS256, generated on first start, stored as JWEs under
 * the at-rest key (from a secret file), rotated on a schedule or on demand. A rotated key stays in the
 * JWKS until every token it signed has expired, then leaves it.
 */
import { createHash, hkdfSync } from 'node:crypto';
import { uuidv7, type Database } from '@cryptoutil/infra';
import { generateJwk, keySpecFor, parseKeyAlgorithm, unwrapJwk, wrapJwk, type JWK } from '@cryptoutil/jose-authority';
import {
  insertSigningKey,
  liveSigningKeyIds,
  liveSigningKeys,
  retireSigningKeys,
} from '../data/signing-key-repository.js';

export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export type AtRestKey = JWK & { kid: string };

/** A key that encrypts data at rest (one per purpose), derived from the secret-file value. */
export function atRestKey(
  secret: string,
  purpose: 'signing-keys' | 'totp-secrets' | 'device-codes' | 'refresh-successors' = 'signing-keys',
): AtRestKey {
  const key = Buffer.from(
    hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'cryptoutil/identity', `${purpose}-at-rest`, 32),
  );
  const kid = `at-rest-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  return { kty: 'oct', k: key.toString('base64url'), kid };
}

export interface SigningKeySet {
  /** Private JWKs, newest first per algorithm (oidc-provider signs with the first of an alg). */
  keys: JWK[];
  /** When the newest key of each algorithm was made. */
  newest: Partial<Record<SigningAlgorithm, Date>>;
  /** Which keys these are (ids and retirements): another instance's rotation changes it. */
  version: string;
}

function versionOf(records: { kid: string; retireAfter: string | null }[]): string {
  return records.map((record) => `${record.kid}:${record.retireAfter ?? ''}`).join(',');
}

/** The version of the live key set in the database now, to compare with a loaded set's. */
export async function signingKeyVersion(db: Database, now = new Date()): Promise<string> {
  return versionOf(await liveSigningKeyIds(db, now.toISOString()));
}

async function createKey(db: Database, wrapping: AtRestKey, alg: SigningAlgorithm, now: Date): Promise<void> {
  const kid = uuidv7();
  const jwk = await generateJwk(keySpecFor(parseKeyAlgorithm(alg)), { kid, alg, use: 'sig' });
  await insertSigningKey(db, {
    kid,
    alg,
    jwe: await wrapJwk(jwk, wrapping),
    createdAt: now.toISOString(),
    retireAfter: null,
  });
}

/** Loads the published keys, creating a first key for any algorithm that has none. */
export async function loadSigningKeys(db: Database, wrapping: AtRestKey, now = new Date()): Promise<SigningKeySet> {
  let records = await liveSigningKeys(db, now.toISOString());
  const missing = SIGNING_ALGORITHMS.filter(
    (alg) => !records.some((key) => key.alg === alg && key.retireAfter === null),
  );
  for (const alg of missing) await createKey(db, wrapping, alg, now);
  if (missing.length > 0) records = await liveSigningKeys(db, now.toISOString());
  const keys: JWK[] = [];
  const newest: SigningKeySet['newest'] = {};
  for (const record of records) {
    keys.push(await unwrapJwk(record.jwe, wrapping));
    const alg = record.alg as SigningAlgorithm;
    if (record.retireAfter === null && newest[alg] === undefined) newest[alg] = new Date(record.createdAt);
  }
  return { keys, newest, version: versionOf(records) };
}

/**
 * Makes a new key per algorithm; the old ones sign nothing more and leave the JWKS after
 * `maxTokenLifetimeMs` (the longest a token they signed can still be valid).
 */
export async function rotateSigningKeys(
  db: Database,
  wrapping: AtRestKey,
  maxTokenLifetimeMs: number,
  now = new Date(),
): Promise<void> {
  const retireAfter = new Date(now.getTime() + maxTokenLifetimeMs).toISOString();
  await db.transaction(async (tx) => {
    for (const alg of SIGNING_ALGORITHMS) await retireSigningKeys(tx, alg, retireAfter);
  });
  for (const alg of SIGNING_ALGORITHMS) await createKey(db, wrapping, alg, now);
}

/** True when the newest key of some algorithm is older than the rotation period. */
export function rotationDue(set: SigningKeySet, rotationPeriodMs: number, now = new Date()): boolean {
  return SIGNING_ALGORITHMS.some((alg) => {
    const made = set.newest[alg];
    return made === undefined || now.getTime() - made.getTime() >= rotationPeriodMs;
  });
}
