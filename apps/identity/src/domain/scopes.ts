/** Scopes Identity knows: OIDC's, and the KMS's (integration.md "Hybrid scope enforcement"). */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email'] as const;

export const KMS_SCOPES = [
  'kms:admin',
  'kms:read',
  'kms:write',
  'kms:encrypt',
  'kms:decrypt',
  'kms:rewrap',
  'kms:sign',
  'kms:verify',
  'kms:generate',
] as const;
