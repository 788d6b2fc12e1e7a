/** The API's snake_case shapes of ElasticKey and MaterialKey (kms.md). Never includes wrapped material. */
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import type { MaterialKeyRecord } from '../data/material-key-repository.js';
import type { Page } from '../data/paging.js';
import { parseKeyAlgorithm } from '@cryptoutil/jose-authority';
import { effectiveMaxEncryptions } from '../domain/encryption-usage.js';

export function elasticKeyJson(key: ElasticKeyRecord) {
  return {
    elastic_key_id: key.id,
    name: key.name,
    description: key.description,
    provider: key.provider,
    algorithm: key.algorithm,
    versioning_allowed: key.versioningAllowed,
    import_allowed: key.importAllowed,
    status: key.status,
    created_at: key.createdAt,
    updated_at: key.updatedAt,
    material_key_count: key.materialKeyCount,
    latest_version: key.latestVersion,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: key.minEncryptionVersion,
    rotation_period: key.rotationPeriod,
    // The bound in force (the key's own, else the algorithm's default); null: unlimited.
    max_encryptions: effectiveMaxEncryptions(key.maxEncryptions, parseKeyAlgorithm(key.algorithm)),
  };
}

export function materialKeyJson(key: MaterialKeyRecord) {
  return {
    elastic_key_id: key.elasticKeyId,
    material_key_id: key.id,
    version: key.version,
    generate_date: key.generateDate,
    import_date: key.importDate,
    expiration_date: key.expirationDate,
    revocation_date: key.revocationDate,
    destroy_date: key.destroyDate,
    encryption_count: key.encryptionCount,
    clear_public: key.clearPublic === null ? null : (JSON.parse(key.clearPublic) as unknown),
    public_only: key.publicOnly,
  };
}

export function pageJson<T, U>(page: Page<T>, present: (item: T) => U) {
  return { items: page.items.map(present), page: page.page, size: page.size, total: page.total };
}
