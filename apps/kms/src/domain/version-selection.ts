/**
 * Which version makes a new JWE or JWS: the latest usable one, or the one the caller asks for with
 * `version=N` (Vault's `key_version`) if it is not below the key's minimums. An encrypt also counts
 * against `max_encryptions`; when the latest version has made its last one, a new version is
 * generated (one winner among instances) and serves instead.
 */
import type { KeyAlgorithm } from '@cryptoutil/jose-authority';
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import { findMaterialKeyByVersion, type MaterialKeyRecord } from '../data/material-key-repository.js';
import { effectiveMaxEncryptions } from './encryption-usage.js';
import { materialKeyBelowMinVersion, materialKeyExhausted, materialKeyVersionNotFound } from './errors.js';
import type { KmsContext } from './kms-context.js';
import {
  assertDecryptable,
  assertPart,
  assertUsable,
  rotateAfter,
  unwrapMaterial,
  usableRecord,
  type UsableMaterial,
} from './material-key.js';

/** How often one encrypt may find the latest version exhausted and rotate before it gives up. */
const MAX_ROTATIONS_PER_ENCRYPT = 3;

async function chosenRecord(ctx: KmsContext, key: ElasticKeyRecord, version?: number): Promise<MaterialKeyRecord> {
  let record: MaterialKeyRecord;
  if (version === undefined) {
    record = await usableRecord(ctx, key, { latest: true });
  } else {
    const found = await findMaterialKeyByVersion(ctx.db, ctx.tables, key.id, version);
    if (!found) throw materialKeyVersionNotFound(version);
    const min = Math.max(key.minEncryptionVersion, key.minDecryptionVersion);
    if (version < min) throw materialKeyBelowMinVersion(version, min);
    assertUsable(found);
    record = found;
  }
  // Output nobody could decrypt or verify (the latest usable version fell below the minimum) is refused.
  assertDecryptable(key, record);
  return record;
}

/** The version a signature is made with. */
export async function signingMaterial(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  version?: number,
): Promise<UsableMaterial> {
  const record = await chosenRecord(ctx, key, version);
  // A public-only version cannot sign (409), also when it is the latest: never a fall back to an older one.
  assertPart(record, 'private');
  return unwrapMaterial(ctx, record);
}

/** The version an encryption is made with, one encryption taken from its budget. */
export async function encryptionMaterial(
  ctx: KmsContext,
  key: ElasticKeyRecord,
  algorithm: KeyAlgorithm,
  version?: number,
): Promise<UsableMaterial> {
  const max = effectiveMaxEncryptions(key.maxEncryptions, algorithm);
  let record = await chosenRecord(ctx, key, version);
  for (let rotations = 0; max !== null; rotations += 1) {
    if (await ctx.usage.take({ db: ctx.db, tables: ctx.tables, materialKeyId: record.id }, max)) break;
    if (version !== undefined) {
      throw materialKeyExhausted(`Version ${version} has made its max_encryptions (${max}) encryptions.`);
    }
    if (!key.versioningAllowed || rotations === MAX_ROTATIONS_PER_ENCRYPT) {
      throw materialKeyExhausted(
        `The latest version has made its max_encryptions (${max}) encryptions and no new version can be added.`,
      );
    }
    await rotateAfter(ctx, key, record.version);
    record = await chosenRecord(ctx, key);
  }
  return unwrapMaterial(ctx, record);
}
