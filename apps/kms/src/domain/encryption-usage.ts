/**
 * `max_encryptions` (kms.md "Automatic rotation"): how many encryptions one version may make, counted
 * durably. A process reserves a block of counts in the database with one atomic conditional UPDATE
 * (so the reservations of every process together never pass the bound), serves encrypts from the block
 * in memory, and reserves again when it runs out. Counts left in a block when the process stops are
 * lost: the bound holds across restarts and instances, at the price of a few unused encryptions.
 */
import type { KeyAlgorithm } from '@cryptoutil/jose-authority';
import type { Queryable } from '@cryptoutil/infra';
import { encryptionCount, reserveEncryptions } from '../data/material-key-repository.js';
import type { TenantTables } from '../data/tenant-tables.js';

/** NIST SP 800-38D: at most 2^32 invocations of AES-GCM with random 96-bit IVs under one key. */
export const GCM_RANDOM_IV_LIMIT = 2 ** 32;

/**
 * The bound a version gets when the elastic key sets none: 2^32 when the material key itself runs
 * AES-GCM with a random 96-bit IV per encryption (`dir` with an `A*GCM` enc: it encrypts the content;
 * `A*GCMKW`: it wraps each content key); no bound otherwise (AES-KW is deterministic, CBC-HS, RSA and
 * ECDH-ES make no IV under the material key).
 */
export function defaultMaxEncryptions(algorithm: KeyAlgorithm): number | null {
  if (algorithm.use !== 'enc') return null;
  if (algorithm.alg === 'dir') return algorithm.enc.endsWith('GCM') ? GCM_RANDOM_IV_LIMIT : null;
  return algorithm.alg.endsWith('GCMKW') ? GCM_RANDOM_IV_LIMIT : null;
}

/** The bound that applies to the versions of a key: its own setting, else the algorithm's default. */
export function effectiveMaxEncryptions(maxEncryptions: number | null, algorithm: KeyAlgorithm): number | null {
  return maxEncryptions ?? defaultMaxEncryptions(algorithm);
}

/** The first block a process reserves for a version; each further one doubles, up to the cap. */
const FIRST_BLOCK = 16;
const LARGEST_BLOCK = 65_536;
/** A block is at most this fraction of the bound, so one process never holds most of a small bound. */
const BLOCK_FRACTION = 64;
/** Versions this process keeps counts for; the least recently added one beyond it loses its block. */
const MAX_TRACKED_VERSIONS = 10_000;

interface Budget {
  /** The bound the counts were reserved under; a changed bound drops the block. */
  max: number;
  remaining: number;
  nextBlock: number;
  exhausted: boolean;
  reserving: Promise<void> | undefined;
}

export interface CountedVersion {
  db: Queryable;
  tables: TenantTables;
  materialKeyId: string;
}

export class EncryptionUsage {
  readonly #budgets = new Map<string, Budget>();

  /**
   * Takes one encryption with a version; false once the version has reached `max` (the caller then
   * rotates or refuses). Needs the database only when this process's block is used up.
   */
  async take(version: CountedVersion, max: number): Promise<boolean> {
    const budget = this.#budget(version.materialKeyId, max);
    for (;;) {
      if (budget.max !== max) Object.assign(budget, { max, remaining: 0, exhausted: false });
      if (budget.remaining > 0) {
        budget.remaining -= 1;
        return true;
      }
      if (budget.exhausted) return false;
      // Concurrent encrypts of this process wait for one reservation instead of each making one.
      budget.reserving ??= this.#reserve(version, budget).finally(() => (budget.reserving = undefined));
      await budget.reserving;
    }
  }

  /** Encryptions this process may still make with a version without asking the database. */
  remaining(materialKeyId: string): number {
    return this.#budgets.get(materialKeyId)?.remaining ?? 0;
  }

  #budget(materialKeyId: string, max: number): Budget {
    let budget = this.#budgets.get(materialKeyId);
    if (!budget) {
      if (this.#budgets.size >= MAX_TRACKED_VERSIONS) {
        this.#budgets.delete(this.#budgets.keys().next().value as string);
      }
      budget = { max, remaining: 0, nextBlock: FIRST_BLOCK, exhausted: false, reserving: undefined };
      this.#budgets.set(materialKeyId, budget);
    }
    return budget;
  }

  async #reserve(version: CountedVersion, budget: Budget): Promise<void> {
    const { max } = budget;
    let wanted = Math.min(budget.nextBlock, Math.max(1, Math.floor(max / BLOCK_FRACTION)));
    for (;;) {
      if (await reserveEncryptions(version.db, version.tables, version.materialKeyId, wanted, max)) {
        if (budget.max === max) budget.remaining += wanted;
        budget.nextBlock = Math.min(budget.nextBlock * 2, LARGEST_BLOCK);
        return;
      }
      const left = max - ((await encryptionCount(version.db, version.tables, version.materialKeyId)) ?? max);
      if (left <= 0) {
        if (budget.max === max) budget.exhausted = true;
        return;
      }
      // Near the bound, take half of what is left, so another process still gets some.
      wanted = Math.min(wanted, Math.ceil(left / 2));
    }
  }
}
