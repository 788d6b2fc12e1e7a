/**
 * Material key use cases: generate (a rotation), import, read, list, revoke, and loading the usable
 * key for a crypto operation. Private and secret material exists in clear only in memory: an import
 * takes it wrapped to the tenant's import wrapping key, or takes a public key alone (a version that
 * encrypts and verifies, never decrypts or signs).
 */
import { AppError, ConflictError, uuidv7 } from '@cryptoutil/infra';
import {
  generateJwk,
  hasPrivateMembers,
  keySpecFor,
  parseKeyAlgorithm,
  publicJwk,
  validateImportedJwk,
  validateImportedPublicJwk,
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
  clearKeyImportRefused,
  elasticKeyNotFound,
  importNotAllowed,
  materialKeyNotFound,
  materialKeyPublicOnly,
  materialKeyRevoked,
  noUsableMaterialKey,
  versioningNotAllowed,
} from './errors.js';
import { importWrappingPublicJwk, unwrapImportedKey } from './import-wrapping-key.js';
import type { KmsContext } from './kms-context.js';

type NewMaterialKey = MaterialKeyRecord & { contentKeyId: string };

async function sealedMaterial(
  ctx: KmsContext,
  elasticKeyId: string,
  jwk: JWK,
  algorithm: KeyAlgorithm,
  origin: 'generate' | 'import' | 'import_public',
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
    importDate: origin === 'generate' ? null : now,
    expirationDate: null,
    revocationDate: null,
    publicOnly: origin === 'import_public',
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

/**
 * The public JWK to wrap a key to before importing it into this elastic key (the tenant's import wrapping
 * key; `403 import_not_allowed` where importing is not, so no caller makes the KMS generate one for nothing).
 */
export async function importWrappingKeyFor(ctx: KmsContext, elasticKeyId: string): Promise<JWK> {
  const key = await getElasticKey(ctx, elasticKeyId);
  if (!key.importAllowed) throw importNotAllowed();
  return importWrappingPublicJwk(ctx);
}

/** What an import sends: a key wrapped to the import wrapping key (JWE), or a public JWK alone. */
export type MaterialKeyImport = { jwe: string } | { jwk: Record<string, unknown> };

export async function importMaterialKey(
  ctx: KmsContext,
  elasticKeyId: string,
  input: MaterialKeyImport,
): Promise<MaterialKeyRecord> {
  const key = await getElasticKey(ctx, elasticKeyId);
  if (!key.importAllowed) throw importNotAllowed();
  assertCanAddVersion(key, 'material_imported');
  const algorithm = parseKeyAlgorithm(key.algorithm);
  const spec = keySpecFor(algorithm);
  let material: NewMaterialKey;
  if ('jwe' in input) {
    const jwk = validateImportedJwk(await unwrapImportedKey(ctx, input.jwe), spec);
    material = await sealedMaterial(ctx, elasticKeyId, jwk, algorithm, 'import');
  } else {
    if (hasPrivateMembers(input.jwk)) throw clearKeyImportRefused();
    const jwk = validateImportedPublicJwk(input.jwk, spec);
    material = await sealedMaterial(ctx, elasticKeyId, jwk, algorithm, 'import_public');
  }
  return addVersion(ctx, elasticKeyId, material, 'material_imported');
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

/**
 * Which half of the key an operation needs: decrypt and sign need the private (or secret) key, so a
 * public-only version refuses them (`409 material_key_public_only`, also when it is the latest: never a
 * silent fall back to an older version); encrypt and verify work with the public key alone.
 */
export type KeyPart = 'private' | 'public';

/** The material key for an operation: the latest usable one, or the one named by `kid`. */
export async function usableMaterial(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  materialKeyId?: string,
  part: KeyPart = 'private',
): Promise<UsableMaterial> {
  const record =
    materialKeyId === undefined
      ? await latestUsableMaterialKey(ctx.db, ctx.tables, key.id)
      : await findMaterialKey(ctx.db, ctx.tables, key.id, materialKeyId);
  if (!record) throw materialKeyId === undefined ? noUsableMaterialKey() : materialKeyNotFound();
  if (record.revocationDate !== null || record.jwe === null) throw materialKeyRevoked();
  if (part === 'private' && record.publicOnly) throw materialKeyPublicOnly();
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
  part: KeyPart = 'private',
): Promise<UsableMaterial> {
  if (typeof kid !== 'string') throw foreign('The header has no kid.');
  try {
    return await usableMaterial(ctx, key, kid, part);
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
