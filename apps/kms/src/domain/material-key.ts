/**
 * Material key use cases: generate (a rotation), import, read, list, revoke, and loading the usable
 * key for a crypto operation. Private and secret material exists in clear only in memory.
 */
import { AppError, ConflictError, uuidv7 } from '@cryptoutil/infra';
import {
  generateJwk,
  keySpecFor,
  parseKeyAlgorithm,
  publicJwk,
  validateImportedJwk,
  type JWK,
  type KeyAlgorithm,
  type KeySpec,
} from '@cryptoutil/jose-authority';
import { findElasticKey, updateElasticKey, type ElasticKeyRecord } from '../data/elastic-key-repository.js';
import {
  findMaterialKey,
  insertMaterialKey,
  latestUsableMaterialKey,
  listMaterialKeys as listRecords,
  revokeMaterialKey as revokeRecord,
  type MaterialKeyFilter,
  type MaterialKeyRecord,
} from '../data/material-key-repository.js';
import type { Page, PageRequest } from '../data/paging.js';
import { nextStatus } from './elastic-key-status.js';
import { getElasticKey } from './elastic-key.js';
import {
  elasticKeyNotFound,
  importNotAllowed,
  materialKeyNotFound,
  materialKeyRevoked,
  noUsableMaterialKey,
  versioningNotAllowed,
} from './errors.js';
import type { KmsContext } from './kms-context.js';

type NewMaterialKey = MaterialKeyRecord & { contentKeyId: string };

async function sealedMaterial(
  ctx: KmsContext,
  elasticKeyId: string,
  jwk: JWK,
  algorithm: KeyAlgorithm,
  origin: 'generate' | 'import',
): Promise<NewMaterialKey> {
  const id = uuidv7();
  const keyed: JWK = {
    ...jwk,
    kid: id,
    alg: algorithm.alg,
    use: algorithm.use,
  };
  const { contentKeyId, jwe } = await ctx.barrier.wrap(keyed);
  const pub = publicJwk(keyed);
  const now = ctx.now().toISOString();
  return {
    id,
    elasticKeyId,
    contentKeyId,
    jwe,
    clearPublic: pub ? JSON.stringify(pub) : null,
    generateDate: origin === 'generate' ? now : null,
    importDate: origin === 'import' ? now : null,
    expirationDate: null,
    revocationDate: null,
  };
}

/** A freshly generated material key, wrapped by the barrier, not yet stored. */
export async function newMaterialKey(
  ctx: KmsContext,
  elasticKeyId: string,
  spec: KeySpec,
  algorithm: KeyAlgorithm,
): Promise<NewMaterialKey> {
  return sealedMaterial(ctx, elasticKeyId, await generateJwk(spec, { kid: 'pending' }), algorithm, 'generate');
}

/** Stores a new version after re-checking, in the transaction, the rules that a concurrent change could break. */
async function addVersion(
  ctx: KmsContext,
  elasticKeyId: string,
  material: NewMaterialKey,
  event: 'material_generated' | 'material_imported',
) {
  await ctx.db.transaction(async (tx) => {
    const key = await findElasticKey(tx, ctx.tables, elasticKeyId);
    if (!key) throw elasticKeyNotFound();
    if (!key.versioningAllowed && key.materialKeyCount > 0) throw versioningNotAllowed();
    const status = nextStatus(key.status, event);
    await insertMaterialKey(tx, ctx.tables, material);
    await updateElasticKey(tx, ctx.tables, elasticKeyId, { status, updatedAt: ctx.now().toISOString() });
  });
  return getMaterialKey(ctx, elasticKeyId, material.id);
}

function assertCanAddVersion(key: ElasticKeyRecord, event: 'material_generated' | 'material_imported'): void {
  if (!key.versioningAllowed && key.materialKeyCount > 0) throw versioningNotAllowed();
  nextStatus(key.status, event);
}

export async function generateMaterialKey(ctx: KmsContext, elasticKeyId: string): Promise<MaterialKeyRecord> {
  const key = await getElasticKey(ctx, elasticKeyId);
  assertCanAddVersion(key, 'material_generated');
  const algorithm = parseKeyAlgorithm(key.algorithm);
  return addVersion(
    ctx,
    elasticKeyId,
    await newMaterialKey(ctx, elasticKeyId, keySpecFor(algorithm), algorithm),
    'material_generated',
  );
}

export async function importMaterialKey(
  ctx: KmsContext,
  elasticKeyId: string,
  jwk: unknown,
): Promise<MaterialKeyRecord> {
  const key = await getElasticKey(ctx, elasticKeyId);
  if (!key.importAllowed) throw importNotAllowed();
  assertCanAddVersion(key, 'material_imported');
  const algorithm = parseKeyAlgorithm(key.algorithm);
  const material = validateImportedJwk(jwk, keySpecFor(algorithm));
  return addVersion(
    ctx,
    elasticKeyId,
    await sealedMaterial(ctx, elasticKeyId, material, algorithm, 'import'),
    'material_imported',
  );
}

export async function getMaterialKey(ctx: KmsContext, elasticKeyId: string, id: string): Promise<MaterialKeyRecord> {
  await getElasticKey(ctx, elasticKeyId);
  const material = await findMaterialKey(ctx.db, ctx.tables, elasticKeyId, id);
  if (!material) throw materialKeyNotFound();
  return material;
}

export async function listMaterialKeys(
  ctx: KmsContext,
  filter: MaterialKeyFilter,
  page: PageRequest,
): Promise<Page<MaterialKeyRecord>> {
  if (filter.elasticKeyId !== undefined) await getElasticKey(ctx, filter.elasticKeyId);
  return listRecords(ctx.db, ctx.tables, filter, page);
}

export async function revokeMaterialKey(ctx: KmsContext, elasticKeyId: string, id: string): Promise<MaterialKeyRecord> {
  const material = await getMaterialKey(ctx, elasticKeyId, id);
  if (material.revocationDate !== null) {
    throw new ConflictError('material_key_revoked', { detail: 'The material key is already revoked.' });
  }
  await revokeRecord(ctx.db, ctx.tables, id, ctx.now().toISOString());
  return getMaterialKey(ctx, elasticKeyId, id);
}

export interface UsableMaterial {
  record: MaterialKeyRecord;
  jwk: JWK;
}

/** The material key for an operation: the latest usable one, or the one named by `kid`. */
export async function usableMaterial(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  materialKeyId?: string,
): Promise<UsableMaterial> {
  const record =
    materialKeyId === undefined
      ? await latestUsableMaterialKey(ctx.db, ctx.tables, key.id)
      : await findMaterialKey(ctx.db, ctx.tables, key.id, materialKeyId);
  if (!record) throw materialKeyId === undefined ? noUsableMaterialKey() : materialKeyNotFound();
  if (record.revocationDate !== null || record.jwe === null) throw materialKeyRevoked();
  return { record, jwk: await ctx.barrier.unwrap(record.id, record.jwe) };
}

/**
 * The material key a JWE or JWS names by `kid` (so data made before a rotation still works). A `kid`
 * that is not a version of this elastic key means the input was made with another key: `foreign()`.
 */
export async function materialForKid(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  kid: unknown,
  foreign: (detail: string) => Error,
): Promise<UsableMaterial> {
  if (typeof kid !== 'string') throw foreign('The header has no kid.');
  try {
    return await usableMaterial(ctx, key, kid);
  } catch (error) {
    if (error instanceof AppError && error.code === 'material_key_not_found') {
      throw foreign('It was not made with this elastic key.');
    }
    throw error;
  }
}

/**
 * Memoizes `lookup` per `kid` for one call: a batch names few versions many times, and each is loaded and
 * unwrapped once. A `kid` that is not a string is passed on every time (the lookup refuses it).
 */
export function materialsByKid(
  lookup: (kid: unknown) => Promise<UsableMaterial>,
): (kid: unknown) => Promise<UsableMaterial> {
  const found = new Map<string, Promise<UsableMaterial>>();
  return (kid) => {
    if (typeof kid !== 'string') return lookup(kid);
    let material = found.get(kid);
    if (!material) {
      material = lookup(kid);
      found.set(kid, material);
    }
    return material;
  };
}
