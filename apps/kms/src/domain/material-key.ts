/**
 * Material key use cases: generate (a rotation), import, read, list, revoke, and loading the usable
 * key for a crypto operation. Private and secret material exists in clear only in memory: an import
 * takes it wrapped to the tenant's import wrapping key, or takes a public key alone (a version that
 * encrypts and verifies, never decrypts or signs).
 */
import { ConflictError, isUniqueViolation, uuidv7 } from '@cryptoutil/infra';
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
import {
  findElasticKey,
  lockElasticKey,
  updateElasticKey,
  type ElasticKeyRecord,
} from '../data/elastic-key-repository.js';
import {
  findMaterialKey,
  insertMaterialKey,
  latestUsableMaterialKey,
  latestVersion,
  listMaterialKeys as listRecords,
  revokeMaterialKey as revokeRecord,
  type MaterialKeyFilter,
  type MaterialKeyRecord,
  type NewMaterialKeyRecord,
} from '../data/material-key-repository.js';
import type { Page, PageRequest } from '../data/paging.js';
import { nextStatus } from './elastic-key-status.js';
import { getElasticKey } from './elastic-key.js';
import {
  clearKeyImportRefused,
  elasticKeyNotFound,
  importNotAllowed,
  materialKeyBelowMinVersion,
  materialKeyDestroyed,
  materialKeyNotFound,
  materialKeyPublicOnly,
  materialKeyRevoked,
  noUsableMaterialKey,
  versioningNotAllowed,
} from './errors.js';
import { importWrappingPublicJwk, unwrapImportedKey } from './import-wrapping-key.js';
import type { KmsContext } from './kms-context.js';

async function sealedMaterial(
  ctx: KmsContext,
  elasticKeyId: string,
  jwk: JWK,
  algorithm: KeyAlgorithm,
  origin: 'generate' | 'import' | 'import_public',
): Promise<NewMaterialKeyRecord> {
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
): Promise<NewMaterialKeyRecord> {
  return sealedMaterial(ctx, elasticKeyId, await generateJwk(spec, { kid: 'pending' }), algorithm, 'generate');
}

/**
 * Stores a new version, numbered latest + 1 in the same transaction, after re-checking the rules that a
 * concurrent change could break. The key's row lock makes concurrent additions take turns. With
 * `ifLatestIs`, the version is added only if the latest usable version is still that one (a
 * compare-and-set: of two instances rotating for the same reason, one wins, the other gets undefined).
 */
async function addVersion(
  ctx: KmsContext,
  elasticKeyId: string,
  material: NewMaterialKeyRecord,
  event: 'material_generated' | 'material_imported',
  ifLatestIs?: number,
): Promise<MaterialKeyRecord | undefined> {
  const added = await ctx.db.transaction(async (tx) => {
    if (!(await lockElasticKey(tx, ctx.tables, elasticKeyId))) throw elasticKeyNotFound();
    const key = await findElasticKey(tx, ctx.tables, elasticKeyId);
    if (!key) throw elasticKeyNotFound();
    if (!key.versioningAllowed && key.materialKeyCount > 0) throw versioningNotAllowed();
    const status = nextStatus(key.status, event);
    if (ifLatestIs !== undefined) {
      const usable = await latestUsableMaterialKey(tx, ctx.tables, elasticKeyId);
      if ((usable?.version ?? 0) !== ifLatestIs) return false;
    }
    await insertMaterialKey(tx, ctx.tables, material, (await latestVersion(tx, ctx.tables, elasticKeyId)) + 1);
    await updateElasticKey(tx, ctx.tables, elasticKeyId, { status, updatedAt: ctx.now().toISOString() });
    return true;
  });
  return added ? getMaterialKey(ctx, elasticKeyId, material.id) : undefined;
}

/**
 * Generates a new version unless another request or instance added one after the latest usable
 * version `latest` first: then that one serves and this returns undefined (automatic rotation,
 * exhaustion).
 */
export async function rotateAfter(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  latest: number,
): Promise<MaterialKeyRecord | undefined> {
  const algorithm = parseKeyAlgorithm(key.algorithm);
  const material = await newMaterialKey(ctx, key.id, keySpecFor(algorithm), algorithm);
  try {
    return await addVersion(ctx, key.id, material, 'material_generated', latest);
  } catch (error) {
    // The unique (elastic key, version) index: another writer took the number first.
    if (isUniqueViolation(error)) return undefined;
    throw error;
  }
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
  ) as Promise<MaterialKeyRecord>;
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
  let material: NewMaterialKeyRecord;
  if ('jwe' in input) {
    const jwk = validateImportedJwk(await unwrapImportedKey(ctx, input.jwe), spec);
    material = await sealedMaterial(ctx, elasticKeyId, jwk, algorithm, 'import');
  } else {
    if (hasPrivateMembers(input.jwk)) throw clearKeyImportRefused();
    const jwk = validateImportedPublicJwk(input.jwk, spec);
    material = await sealedMaterial(ctx, elasticKeyId, jwk, algorithm, 'import_public');
  }
  return addVersion(ctx, elasticKeyId, material, 'material_imported') as Promise<MaterialKeyRecord>;
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

/** Which version an operation uses: the latest usable one or the one a `kid` names. */
export type MaterialChoice = { latest: true } | { materialKeyId: string };

/** The record of the chosen version; a revoked or trimmed version is refused. */
export async function usableRecord(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  choice: MaterialChoice,
): Promise<MaterialKeyRecord> {
  let record: MaterialKeyRecord | undefined;
  if ('latest' in choice) {
    record = await latestUsableMaterialKey(ctx.db, ctx.tables, key.id);
    if (!record) throw noUsableMaterialKey();
  } else {
    record = await findMaterialKey(ctx.db, ctx.tables, key.id, choice.materialKeyId);
    if (!record) throw materialKeyNotFound();
  }
  assertUsable(record);
  return record;
}

/** A public-only version refuses what needs the private half. */
export function assertPart(record: MaterialKeyRecord, part: KeyPart): void {
  if (part === 'private' && record.publicOnly) throw materialKeyPublicOnly();
}

/** A revoked or trimmed version refuses every operation. */
export function assertUsable(record: MaterialKeyRecord): void {
  if (record.revocationDate !== null) throw materialKeyRevoked();
  if (record.destroyDate !== null || record.jwe === null) throw materialKeyDestroyed();
}

/** The clear key of a usable version (the barrier caches it, so a hot key is not unwrapped again). */
export async function unwrapMaterial(ctx: KmsContext, record: MaterialKeyRecord): Promise<UsableMaterial> {
  return { record, jwk: await ctx.barrier.unwrap(record.id, record.jwe as string) };
}

/** The material key for an operation: the latest usable one, or the one named by `kid`. */
export async function usableMaterial(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  materialKeyId?: string,
  part: KeyPart = 'private',
): Promise<UsableMaterial> {
  const record = await usableRecord(ctx, key, materialKeyId === undefined ? { latest: true } : { materialKeyId });
  assertPart(record, part);
  return unwrapMaterial(ctx, record);
}

/** Decrypt and verify refuse versions below the key's `min_decryption_version` (nothing is deleted). */
export function assertDecryptable(key: ElasticKeyRecord, record: MaterialKeyRecord): void {
  if (record.version < key.minDecryptionVersion) {
    throw materialKeyBelowMinVersion(record.version, key.minDecryptionVersion);
  }
}

/**
 * The material key a JWE or JWS names by `kid` (so data made before a rotation still works), unless
 * its version is below `min_decryption_version`. A `kid` that is not a version of this elastic key
 * means the input was made with another key: `foreign()`.
 */
export async function materialForKid(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  kid: unknown,
  foreign: (detail: string) => Error,
  part: KeyPart = 'private',
): Promise<UsableMaterial> {
  if (typeof kid !== 'string') throw foreign('The header has no kid.');
  const record = await findMaterialKey(ctx.db, ctx.tables, key.id, kid);
  if (!record) throw foreign('It was not made with this elastic key.');
  assertDecryptable(key, record);
  assertUsable(record);
  assertPart(record, part);
  return unwrapMaterial(ctx, record);
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
