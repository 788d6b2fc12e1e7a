/**
 * Vault Transit named keys: `transit/keys/:name` is the elastic key of that name in the caller's tenant
 * (names are unique per tenant). Create, read (Vault's read-key shape) and rotate go through the elastic
 * and material key use cases; nothing here stores anything of its own.
 */
import { createPublicKey } from 'node:crypto';
import { AppError, NotFoundError, ValidationError } from '@cryptoutil/infra';
import { parseKeyAlgorithm, type JWK } from '@cryptoutil/jose-authority';
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import type { MaterialKeyRecord } from '../data/material-key-repository.js';
import { createElasticKey, listElasticKeys } from './elastic-key.js';
import type { KmsContext } from './kms-context.js';
import { generateMaterialKey, listMaterialKeys } from './material-key.js';
import { joseAlgorithmFor, vaultKeyType } from './vault-transit.js';

export async function findTransitKey(ctx: KmsContext, name: string): Promise<ElasticKeyRecord | undefined> {
  const page = await listElasticKeys(ctx, { names: [name] }, { page: 0, size: 1, sort: [] });
  return page.items[0];
}

/** The named key for an operation; Vault answers a missing one `400 <what> not found`. */
export async function transitKey(ctx: KmsContext, name: string, what = 'encryption key'): Promise<ElasticKeyRecord> {
  const key = await findTransitKey(ctx, name);
  if (!key) throw new ValidationError(`${what} not found`, { code: 'elastic_key_not_found' });
  return key;
}

/** Vault's key creation options the KMS cannot honour: refused rather than silently ignored. */
export interface CreateTransitKeyOptions {
  derived?: boolean | undefined;
  convergent_encryption?: boolean | undefined;
  exportable?: boolean | undefined;
  allow_plaintext_backup?: boolean | undefined;
  auto_rotate_period?: number | string | undefined;
}

function refuseUnsupported(options: CreateTransitKeyOptions): void {
  for (const flag of ['derived', 'convergent_encryption', 'exportable', 'allow_plaintext_backup'] as const) {
    if (options[flag] === true) {
      throw new ValidationError(`${flag} is not supported: key material never leaves the KMS and is not derived`, {
        code: 'vault_option_unsupported',
      });
    }
  }
  const period = options.auto_rotate_period;
  if (period !== undefined && period !== 0 && period !== '0' && period !== '') {
    throw new ValidationError('auto_rotate_period is not supported yet: rotate with keys/:name/rotate', {
      code: 'vault_option_unsupported',
    });
  }
}

/** Vault's key name rule (`GenericNameRegex`), within the elastic key name's 255 characters. */
const KEY_NAME = /^\w(?:[\w.@-]{0,253}\w)?$/;

/**
 * `POST transit/keys/:name`: creates the elastic key with the type's JOSE algorithm. Like Vault, an
 * existing key of that name is returned as it is (`created: false`, and the router adds Vault's warning).
 */
export async function createTransitKey(
  ctx: KmsContext,
  name: string,
  type: string,
  options: CreateTransitKeyOptions = {},
): Promise<{ key: ElasticKeyRecord; created: boolean }> {
  if (!KEY_NAME.test(name)) {
    throw new ValidationError(
      'invalid key name: letters, digits, _ . @ - (up to 255), starting and ending with a letter or digit',
      {
        code: 'invalid_name',
      },
    );
  }
  const algorithm = joseAlgorithmFor(type);
  refuseUnsupported(options);
  const existing = await findTransitKey(ctx, name);
  if (existing) return { key: existing, created: false };
  try {
    const key = await createElasticKey(ctx, {
      name,
      description: `Created through the Vault Transit API (type ${type}).`,
      algorithm,
      provider: 'Internal',
      versioningAllowed: true,
      importAllowed: false,
    });
    return { key, created: true };
  } catch (error) {
    // Created concurrently under the same name: answer like any existing key.
    const raced = error instanceof AppError && error.code === 'elastic_key_name_taken';
    const key = raced ? await findTransitKey(ctx, name) : undefined;
    if (key) return { key, created: false };
    throw error;
  }
}

/** `POST transit/keys/:name/rotate`: a new material key (the next version) becomes the latest. */
export async function rotateTransitKey(ctx: KmsContext, name: string): Promise<ElasticKeyRecord> {
  const key = await findTransitKey(ctx, name);
  if (!key) throw new ValidationError('key not found', { code: 'elastic_key_not_found' });
  await generateMaterialKey(ctx, key.id);
  return (await findTransitKey(ctx, name)) ?? key;
}

/** `GET transit/keys/:name` of a missing key: Vault's bare `404 {"errors":[]}`. */
export const transitKeyNotFound = (): NotFoundError => new NotFoundError('elastic_key_not_found', { detail: '' });

const CURVE_NAMES: Record<string, string> = { 'P-256': 'P-256', 'P-384': 'P-384', 'P-521': 'P-521' };

/** One version in Vault's `keys` map: the creation time, or for asymmetric keys `{name, public_key, creation_time}`. */
function versionEntry(record: MaterialKeyRecord, type: string): number | Record<string, string> {
  const created = record.generateDate ?? record.importDate ?? new Date(0).toISOString();
  if (record.clearPublic === null) return Math.floor(Date.parse(created) / 1000);
  const jwk = JSON.parse(record.clearPublic) as JWK;
  const publicKey =
    jwk.kty === 'OKP'
      ? Buffer.from(String(jwk.x), 'base64url').toString('base64')
      : String(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
  const name = jwk.kty === 'OKP' ? 'ed25519' : jwk.kty === 'EC' ? (CURVE_NAMES[String(jwk.crv)] ?? type) : type;
  return { name, public_key: publicKey, creation_time: created };
}

/**
 * Vault's read-key `data` for an elastic key: enough for clients (type, versions, which operations it
 * supports, public keys), plus the JOSE facts (`jose_algorithm`, `elastic_key_id`, `status`).
 * Versions are numbered as in `materialKeyVersions`; revoked or destroyed ones are left out of `keys`.
 */
export async function transitKeyInfo(ctx: KmsContext, key: ElasticKeyRecord): Promise<Record<string, unknown>> {
  const materials = (await listMaterialKeys(ctx, { elasticKeyId: key.id }, { page: 0, size: 1_000_000, sort: [] }))
    .items;
  const type = vaultKeyType(key.algorithm);
  const usable = materials
    .map((record, index) => ({ record, version: index + 1 }))
    .filter(({ record }) => record.revocationDate === null && record.jwe !== null);
  const encrypts = parseKeyAlgorithm(key.algorithm).use === 'enc';
  return {
    name: key.name,
    type,
    jose_algorithm: key.algorithm,
    elastic_key_id: key.id,
    status: key.status,
    keys: Object.fromEntries(usable.map(({ record, version }) => [String(version), versionEntry(record, type)])),
    latest_version: materials.length,
    min_available_version: 0,
    min_decryption_version: usable[0]?.version ?? 1,
    min_encryption_version: 0,
    derived: false,
    exportable: false,
    allow_plaintext_backup: false,
    deletion_allowed: false,
    imported_key: key.importAllowed,
    auto_rotate_period: 0,
    supports_encryption: encrypts,
    supports_decryption: encrypts,
    supports_derivation: false,
    supports_signing: !encrypts,
  };
}
