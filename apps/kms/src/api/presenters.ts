/** The API's snake_case shapes of ElasticKey and MaterialKey (kms.md). Never includes wrapped material. */
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import type { MaterialKeyRecord } from '../data/material-key-repository.js';
import type { Page } from '../data/paging.js';

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
  };
}

export function materialKeyJson(key: MaterialKeyRecord) {
  return {
    elastic_key_id: key.elasticKeyId,
    material_key_id: key.id,
    generate_date: key.generateDate,
    import_date: key.importDate,
    expiration_date: key.expirationDate,
    revocation_date: key.revocationDate,
    clear_public: key.clearPublic === null ? null : (JSON.parse(key.clearPublic) as unknown),
    public_only: key.publicOnly,
  };
}

export function pageJson<T, U>(page: Page<T>, present: (item: T) => U) {
  return { items: page.items.map(present), page: page.page, size: page.size, total: page.total };
}
