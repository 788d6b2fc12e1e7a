/**
 * The version policy and rotation settings of an elastic key (`PUT /elastickey/{id}`), checked against
 * its versions and algorithm: `min_decryption_version` from 1 to the latest version,
 * `min_encryption_version` 0 (latest) or from `min_decryption_version` to the latest,
 * `rotation_period` an ISO 8601 duration of at least an hour (keys that may have versions only),
 * `max_encryptions` for encryption keys, at most the algorithm's default bound. null resets a setting.
 */
import { parseKeyAlgorithm } from '@cryptoutil/jose-authority';
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import { defaultMaxEncryptions } from './encryption-usage.js';
import { invalidKeySetting } from './errors.js';
import { parseRotationPeriod } from './rotation-period.js';

export interface VersionSettings {
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  rotationPeriod?: string | null;
  maxEncryptions?: number | null;
}

/** The settings after the change, or a 400 naming the field that the key does not allow. */
export function applyVersionSettings(
  key: ElasticKeyRecord,
  changes: VersionSettings,
): Required<VersionSettings> & { rotationPeriod: string | null; maxEncryptions: number | null } {
  const latest = key.latestVersion;
  const minDecryptionVersion = changes.minDecryptionVersion ?? key.minDecryptionVersion;
  const minEncryptionVersion = changes.minEncryptionVersion ?? key.minEncryptionVersion;
  if (changes.minDecryptionVersion !== undefined && minDecryptionVersion > Math.max(latest, 1)) {
    throw invalidKeySetting('min_decryption_version', `must not be above the latest version (${latest}).`);
  }
  if (minEncryptionVersion !== 0 && minEncryptionVersion > latest) {
    throw invalidKeySetting('min_encryption_version', `must be 0 or not above the latest version (${latest}).`);
  }
  if (minEncryptionVersion !== 0 && minEncryptionVersion < minDecryptionVersion) {
    throw invalidKeySetting(
      'min_encryption_version',
      `must be 0 or at least min_decryption_version (${minDecryptionVersion}).`,
    );
  }
  const rotationPeriod = changes.rotationPeriod === undefined ? key.rotationPeriod : changes.rotationPeriod;
  if (changes.rotationPeriod !== undefined && changes.rotationPeriod !== null) {
    parseRotationPeriod(changes.rotationPeriod);
    if (!key.versioningAllowed) {
      throw invalidKeySetting('rotation_period', 'needs versioning_allowed=true (rotation adds versions).');
    }
  }
  const maxEncryptions = changes.maxEncryptions === undefined ? key.maxEncryptions : changes.maxEncryptions;
  if (changes.maxEncryptions !== undefined && changes.maxEncryptions !== null) {
    const algorithm = parseKeyAlgorithm(key.algorithm);
    if (algorithm.use !== 'enc') throw invalidKeySetting('max_encryptions', 'applies to encryption keys only.');
    const bound = defaultMaxEncryptions(algorithm);
    if (bound !== null && changes.maxEncryptions > bound) {
      throw invalidKeySetting('max_encryptions', `must not be above ${bound} for ${key.algorithm}.`);
    }
  }
  return { minDecryptionVersion, minEncryptionVersion, rotationPeriod, maxEncryptions };
}
