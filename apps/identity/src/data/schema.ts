/**
 * Identity's own tables (oidc-provider's models live in `oidc-schema.ts`). Portable SQL: text ids and
 * ISO timestamps, JSON as text, 0/1 booleans. Secrets are only hashes; signing keys only JWEs.
 */
import { auditMigration, auditSubjectMigration, rateLimitMigration, type Migration } from '@cryptoutil/infra';

export const IDENTITY_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_users_clients',
    sql: `
CREATE TABLE identity_users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  email TEXT,
  name TEXT,
  roles TEXT NOT NULL,
  tenant_id TEXT,
  enabled INTEGER NOT NULL,
  demo INTEGER NOT NULL,
  failed_logins INTEGER NOT NULL,
  locked_until TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE identity_clients (
  client_id TEXT PRIMARY KEY,
  metadata TEXT NOT NULL,
  secret_hash TEXT,
  trusted INTEGER NOT NULL,
  tenant_id TEXT,
  demo INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);`,
  },
  {
    id: '0002_signing_keys_revocations',
    sql: `
CREATE TABLE identity_signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  jwe TEXT NOT NULL,
  created_at TEXT NOT NULL,
  retire_after TEXT
);
CREATE TABLE identity_revoked_tokens (
  jti TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX identity_revoked_tokens_by_expiry ON identity_revoked_tokens (expires_at);`,
  },
  {
    id: '0003_user_totp',
    sql: `
ALTER TABLE identity_users ADD COLUMN totp_secret TEXT;
ALTER TABLE identity_users ADD COLUMN totp_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identity_users ADD COLUMN totp_last_step BIGINT;`,
  },
  // The hash-chained, append-only audit log (packages/infra/src/audit).
  auditMigration('identity', '0004_audit_log'),
  // Rate-limit buckets shared by every instance (packages/infra/src/db/shared-rate-limiter).
  rateLimitMigration('0005_rate_limit_buckets'),
  {
    // Refresh-token rotations inside the reuse grace window (refresh-rotation-repository.ts): the row's
    // existence says which request rotated first; `successor` is the new token sealed under the at-rest key,
    // erased when the window ends.
    id: '0007_refresh_grace',
    sql: `
CREATE TABLE identity_refresh_rotations (
  token_id TEXT PRIMARY KEY,
  successor TEXT,
  expires_at BIGINT NOT NULL
);
CREATE INDEX identity_refresh_rotations_by_expiry ON identity_refresh_rotations (expires_at);`,
  },
  // The audit record's `subject`: the user a token exchange (RFC 8693) acted for.
  auditSubjectMigration('identity', '0008_audit_subject'),
  {
    // Passkeys (WebAuthn): the public keys users registered, and the one-time challenges of the ceremonies in
    // progress (in the database so any instance can finish what another began; deleted when used).
    id: '0009_webauthn_credentials',
    sql: `
CREATE TABLE identity_webauthn_credentials (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES identity_users(id) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  sign_count BIGINT NOT NULL,
  transports TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_used_at TEXT
);
CREATE INDEX identity_webauthn_credentials_by_user ON identity_webauthn_credentials (user_id);
CREATE TABLE identity_webauthn_challenges (
  binding TEXT NOT NULL,
  purpose TEXT NOT NULL,
  challenge TEXT NOT NULL,
  user_id TEXT,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (binding, purpose)
);
CREATE INDEX identity_webauthn_challenges_by_expiry ON identity_webauthn_challenges (expires_at);
ALTER TABLE identity_users ADD COLUMN passkey_required INTEGER NOT NULL DEFAULT 0;`,
  },
];
