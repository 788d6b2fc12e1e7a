/**
 * The public JWKS of an elastic key: every asymmetric material key that is not revoked, not trimmed
 * and not below `min_decryption_version` (the KMS would refuse to verify or decrypt with those).
 */
import type { JSONWebKeySet, JWK } from '@cryptoutil/jose-authority';
import { usableMaterialKeys } from '../data/material-key-repository.js';
import { getElasticKey } from './elastic-key.js';
import type { KmsContext } from './kms-context.js';

export async function elasticKeyJwks(ctx: KmsContext, elasticKeyId: string): Promise<JSONWebKeySet> {
  const key = await getElasticKey(ctx, elasticKeyId);
  const materials = await usableMaterialKeys(ctx.db, ctx.tables, elasticKeyId, key.minDecryptionVersion);
  return {
    keys: materials.flatMap((material) => (material.clearPublic ? [JSON.parse(material.clearPublic) as JWK] : [])),
  };
}
