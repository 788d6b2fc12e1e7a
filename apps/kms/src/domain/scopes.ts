/**
 * The KMS's scopes (integration.md "Hybrid scope enforcement"): fine scopes per operation, and the
 * coarse scopes Identity grants that imply them (expanded one level, then matched exactly).
 */
import type { ScopeImplications } from '@cryptoutil/jose-authority';

export const KMS_FINE_SCOPES = [
  'kms:encrypt',
  'kms:decrypt',
  'kms:rewrap',
  'kms:sign',
  'kms:verify',
  'kms:generate',
  'kms:pool:create',
  'kms:pool:read',
  'kms:pool:update',
  'kms:pool:delete',
  'kms:key:create',
  'kms:key:read',
  'kms:key:rotate',
  'kms:key:delete',
  /** Trim: destroys the material of versions below min_decryption_version. Implied by kms:admin only. */
  'kms:key:trim',
] as const;

export type KmsScope = (typeof KMS_FINE_SCOPES)[number];

const WRITE: readonly KmsScope[] = [
  'kms:encrypt',
  'kms:decrypt',
  'kms:rewrap',
  'kms:sign',
  'kms:generate',
  'kms:pool:create',
  'kms:pool:update',
  'kms:pool:delete',
  'kms:key:create',
  'kms:key:rotate',
  'kms:key:delete',
];
const READ: readonly KmsScope[] = ['kms:pool:read', 'kms:key:read', 'kms:verify'];

export const KMS_SCOPE_IMPLICATIONS: ScopeImplications = {
  'kms:admin': [...KMS_FINE_SCOPES],
  'kms:write': WRITE,
  'kms:read': READ,
};

/** Every scope name the KMS knows: coarse and fine. Configuration naming anything else is refused. */
export const KMS_KNOWN_SCOPES: ReadonlySet<string> = new Set([
  ...KMS_FINE_SCOPES,
  ...Object.keys(KMS_SCOPE_IMPLICATIONS),
]);
