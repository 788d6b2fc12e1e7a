/**
 * The barrier (kms.md "Barrier"): unseal keys → root → intermediate → content → material keys, each
 * stored as a JWE under its parent. Like Vault's barrier it has a tiny interface (unseal, wrap, unwrap,
 * rotate, seal); crypto callers never see the tiers. Unwrapped intermediate, content and material keys
 * sit in a bounded LRU with a TTL, so a hot encrypt does no tier decryption; seal clears everything.
 */
import { sql } from 'drizzle-orm';
import { LRUCache } from 'lru-cache';
import { ConflictError, ServiceUnavailableError, uuidv7, type Database, type Queryable } from '@cryptoutil/infra';
import { generateJwk, jweHeader, unwrapJwk, wrapJwk, type JWK } from '@cryptoutil/jose-authority';
import {
  countRootKeys,
  findWrappedKey,
  insertRootKey,
  insertWrappedKey,
  latestWrappedKey,
  rootKeyWraps,
  type ChildTier,
} from '../data/barrier-repository.js';
import { UnsealError, type UnsealKey } from './unseal.js';

export type BarrierTier = 'root' | 'intermediate' | 'content';

export interface BarrierOptions {
  /** True when all M secrets were given: needed to create the hierarchy or rotate the root. */
  allSharesGiven: boolean;
  cacheMaxEntries?: number;
  cacheTtlMs?: number;
}

type KeyJwk = JWK & { kid: string };

const TIER_LOCK_ID = 727_002;

function newTierKey(): Promise<KeyJwk> {
  const kid = uuidv7();
  return generateJwk({ kty: 'oct', bytes: 32 }, { kid }) as Promise<KeyJwk>;
}

async function lockBarrier(tx: Queryable): Promise<void> {
  // SQLite transactions are already exclusive (BEGIN IMMEDIATE); PostgreSQL instances queue here.
  if (tx.dialect === 'postgres') await tx.all(sql`SELECT pg_advisory_xact_lock(${TIER_LOCK_ID})`);
}

async function createChild(tx: Queryable, tier: ChildTier, parent: KeyJwk): Promise<KeyJwk> {
  const key = await newTierKey();
  await insertWrappedKey(
    tx,
    tier,
    { id: key.kid, parentId: parent.kid, jwe: await wrapJwk(key, parent) },
    new Date().toISOString(),
  );
  return key;
}

async function createRoot(tx: Queryable, unsealKeys: readonly UnsealKey[]): Promise<KeyJwk> {
  const root = await newTierKey();
  const wraps = await Promise.all(
    unsealKeys.map(async (unsealKey) => ({ unsealKeyId: unsealKey.id, jwe: await wrapJwk(root, unsealKey.jwk) })),
  );
  await insertRootKey(tx, root.kid, wraps, new Date().toISOString());
  return root;
}

export class Barrier {
  #roots = new Map<string, KeyJwk>();
  #unsealKeys: UnsealKey[];
  readonly #db: Database;
  readonly #allSharesGiven: boolean;
  readonly #cache: LRUCache<string, JWK>;
  #sealed = false;

  private constructor(db: Database, unsealKeys: UnsealKey[], options: BarrierOptions) {
    this.#db = db;
    this.#unsealKeys = unsealKeys;
    this.#allSharesGiven = options.allSharesGiven;
    this.#cache = new LRUCache({ max: options.cacheMaxEntries ?? 10_000, ttl: options.cacheTtlMs ?? 5 * 60_000 });
  }

  /**
   * Opens the hierarchy with the unseal keys, creating it on first start. Wrong secrets never create
   * a second hierarchy: if any root key exists, it must open, or this throws `unseal_failed`.
   */
  static async unseal(db: Database, unsealKeys: UnsealKey[], options: BarrierOptions): Promise<Barrier> {
    const barrier = new Barrier(db, unsealKeys, options);
    await db.transaction(async (tx) => {
      await lockBarrier(tx);
      if ((await countRootKeys(tx)) === 0) {
        if (!options.allSharesGiven) {
          throw new UnsealError(
            'all_unseal_secrets_required',
            'the first start creates the key hierarchy and needs every unseal secret',
          );
        }
        const root = await createRoot(tx, unsealKeys);
        barrier.#roots.set(root.kid, root);
        await createChild(tx, 'content', await createChild(tx, 'intermediate', root));
        return;
      }
      await barrier.#loadRoots(tx);
    });
    return barrier;
  }

  async #loadRoots(db: Queryable): Promise<void> {
    const wraps = await rootKeyWraps(
      db,
      this.#unsealKeys.map((key) => key.id),
    );
    if (wraps.length === 0) {
      throw new UnsealError(
        'unseal_failed',
        "the unseal secrets do not open the key hierarchy in this database (wrong secrets, or another deployment's); nothing was changed",
      );
    }
    for (const wrap of wraps) {
      if (this.#roots.has(wrap.id)) continue;
      const unsealKey = this.#unsealKeys.find((key) => key.id === wrap.parentId);
      if (!unsealKey) continue;
      try {
        this.#roots.set(wrap.id, (await unwrapJwk(wrap.jwe, unsealKey.jwk)) as KeyJwk);
      } catch {
        throw new UnsealError(
          'unseal_failed',
          'a root key did not decrypt with the unseal secrets; nothing was changed',
        );
      }
    }
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  #assertUnsealed(): void {
    if (this.#sealed) throw new ServiceUnavailableError('barrier_sealed', { detail: 'The KMS is sealed.' });
  }

  async #root(id: string, db: Queryable = this.#db): Promise<KeyJwk> {
    let root = this.#roots.get(id);
    if (!root) {
      // Another instance may have rotated the root since we unsealed.
      await this.#loadRoots(db);
      root = this.#roots.get(id);
    }
    if (!root) throw new Error(`root key ${id} is not readable with these unseal secrets`);
    return root;
  }

  async #latestRoot(db: Queryable): Promise<KeyJwk> {
    const [newest] = await rootKeyWraps(
      db,
      this.#unsealKeys.map((key) => key.id),
    );
    if (!newest) throw new Error('no root key');
    return this.#root(newest.id, db);
  }

  /** `db` is the open transaction when called from one: SQLite has one connection, so no other may be used. */
  async #tierKey(tier: ChildTier, id: string, db: Queryable = this.#db): Promise<KeyJwk> {
    const cacheKey = `${tier}:${id}`;
    const cached = this.#cache.get(cacheKey);
    if (cached) return cached as KeyJwk;
    const row = await findWrappedKey(db, tier, id);
    if (!row) throw new Error(`${tier} key ${id} not found`);
    const parent =
      tier === 'intermediate'
        ? await this.#root(row.parentId, db)
        : await this.#tierKey('intermediate', row.parentId, db);
    const key = (await unwrapJwk(row.jwe, parent)) as KeyJwk;
    this.#cache.set(cacheKey, key);
    return key;
  }

  async #latest(tier: ChildTier): Promise<KeyJwk> {
    const row = await latestWrappedKey(this.#db, tier);
    if (!row) throw new Error(`no ${tier} key`);
    return this.#tierKey(tier, row.id);
  }

  /** Wraps a material key under the newest content key. */
  async wrap(jwk: JWK): Promise<{ contentKeyId: string; jwe: string }> {
    this.#assertUnsealed();
    const contentKey = await this.#latest('content');
    return { contentKeyId: contentKey.kid, jwe: await wrapJwk(jwk, contentKey) };
  }

  /** Unwraps a material key (cached under `materialKeyId`) with the content key its JWE names. */
  async unwrap(materialKeyId: string, jwe: string): Promise<JWK> {
    this.#assertUnsealed();
    const cacheKey = `material:${materialKeyId}`;
    const cached = this.#cache.get(cacheKey);
    if (cached) return cached;
    const contentKeyId = jweHeader(jwe).kid;
    if (typeof contentKeyId !== 'string') throw new Error('wrapped material key has no kid');
    const jwk = await unwrapJwk(jwe, await this.#tierKey('content', contentKeyId));
    this.#cache.set(cacheKey, jwk);
    return jwk;
  }

  /** Adds a new key to a tier; existing data stays readable through the old keys, nothing is re-encrypted. */
  async rotate(tier: BarrierTier): Promise<{ tier: BarrierTier; key_id: string }> {
    this.#assertUnsealed();
    if (tier === 'root' && !this.#allSharesGiven) {
      throw new ConflictError('all_unseal_secrets_required', {
        detail: 'Rotating the root key needs every unseal secret; this instance was unsealed with fewer.',
      });
    }
    const key = await this.#db.transaction(async (tx) => {
      await lockBarrier(tx);
      if (tier === 'root') return createRoot(tx, this.#unsealKeys);
      if (tier === 'intermediate') return createChild(tx, 'intermediate', await this.#latestRoot(tx));
      const intermediate = await latestWrappedKey(tx, 'intermediate');
      if (!intermediate) throw new Error('no intermediate key');
      return createChild(tx, 'content', await this.#tierKey('intermediate', intermediate.id, tx));
    });
    if (tier === 'root') this.#roots.set(key.kid, key);
    return { tier, key_id: key.kid };
  }

  /** Forgets every key: from now on the barrier refuses to work until a new unseal. */
  seal(): void {
    this.#sealed = true;
    this.#cache.clear();
    this.#roots.clear();
    this.#unsealKeys = [];
  }

  /** Entries in the unwrapped-key cache (for readiness details and tests). */
  get cachedKeys(): number {
    return this.#cache.size;
  }
}
