/**
 * Trim (`POST /elastickey/{id}/trim`, admin): destroys the material of the versions below the key's
 * `min_decryption_version`. The rows stay (with `destroy_date`) for audit; those versions refuse
 * every operation from then on, even if the minimum is lowered again. Raising the minimum alone never
 * destroys anything.
 */
import { findElasticKey, lockElasticKey, type ElasticKeyRecord } from '../data/elastic-key-repository.js';
import { destroyVersionsBelow } from '../data/material-key-repository.js';
import { getElasticKey } from './elastic-key.js';
import { elasticKeyNotFound } from './errors.js';
import type { KmsContext } from './kms-context.js';

export interface TrimResult {
  key: ElasticKeyRecord;
  /** The versions whose material this trim destroyed (empty if there was nothing to destroy). */
  destroyedVersions: number[];
}

export async function trimElasticKey(ctx: KmsContext, id: string): Promise<TrimResult> {
  const destroyedVersions = await ctx.db.transaction(async (tx) => {
    if (!(await lockElasticKey(tx, ctx.tables, id))) throw elasticKeyNotFound();
    const key = await findElasticKey(tx, ctx.tables, id);
    if (!key) throw elasticKeyNotFound();
    return destroyVersionsBelow(tx, ctx.tables, id, key.minDecryptionVersion, ctx.now().toISOString());
  });
  return { key: await getElasticKey(ctx, id), destroyedVersions };
}
