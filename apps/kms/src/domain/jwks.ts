/** The public JWKS of an elastic key: every asymmetric material key that is not revoked. */
import type { JSONWebKeySet, JWK } from '@cryptoutil/jose-authority';
import { usableMaterialKeys } from '../data/material-key-repository.js';
import { getElasticKey } from './elastic-key.js';
import type { KmsContext } from './kms-context.js';

export async function elasticKeyJwks(ctx: KmsContext, elasticKeyId: string): Promise<JSONWebKeySet> {
  await getElasticKey(ctx, elasticKeyId);
  const materials = await usableMaterialKeys(ctx.db, ctx.tables, elasticKeyId);
  return {
    keys: materials.flatMap((material) => (material.clearPublic ? [JSON.parse(material.clearPublic) as JWK] : [])),
  };
}
