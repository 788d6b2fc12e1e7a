/**
 * KMS tables, one portable SQL text per migration. Ids are UUIDv7 text (time-ordered, so `ORDER BY id`
 * is creation order); timestamps are ISO-8601 UTC text (sortable as text on both engines); booleans are
 * 0/1 integers so one query text serves SQLite and PostgreSQL. Key material is only ever stored as JWE.
 */
import { auditMigration, auditSubjectMigration, rateLimitMigration, type Migration } from '@cryptoutil/infra';

/** The elastic key columns, the same in the first (shared) table and in every tenant's schema. */
const ELASTIC_KEY_COLUMNS = `
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  provider TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  versioning_allowed INTEGER NOT NULL,
  import_allowed INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  delete_after TEXT`;

export const KMS_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_barrier',
    sql: `
CREATE TABLE kms_root_keys (id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE kms_root_key_wraps (
  root_key_id TEXT NOT NULL REFERENCES kms_root_keys (id),
  unseal_key_id TEXT NOT NULL,
  jwe TEXT NOT NULL,
  PRIMARY KEY (root_key_id, unseal_key_id)
);
CREATE TABLE kms_intermediate_keys (
  id TEXT PRIMARY KEY,
  root_key_id TEXT NOT NULL REFERENCES kms_root_keys (id),
  jwe TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE kms_content_keys (
  id TEXT PRIMARY KEY,
  intermediate_key_id TEXT NOT NULL REFERENCES kms_intermediate_keys (id),
  jwe TEXT NOT NULL,
  created_at TEXT NOT NULL
);`,
  },
  {
    id: '0002_elastic_keys',
    sql: `
CREATE TABLE kms_elastic_keys (${ELASTIC_KEY_COLUMNS}
);
CREATE TABLE kms_material_keys (
  id TEXT PRIMARY KEY,
  elastic_key_id TEXT NOT NULL REFERENCES kms_elastic_keys (id),
  content_key_id TEXT REFERENCES kms_content_keys (id),
  jwe TEXT,
  clear_public TEXT,
  generate_date TEXT,
  import_date TEXT,
  expiration_date TEXT,
  revocation_date TEXT
);
CREATE INDEX kms_material_keys_by_elastic_key ON kms_material_keys (elastic_key_id, id);`,
  },
  {
    id: '0003_tenants',
    sql: `
CREATE TABLE kms_tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);`,
  },
  {
    // The database realm's users (JSON arrays and objects as text) and the browser API's sessions.
    id: '0004_realm_users_and_sessions',
    sql: `
CREATE TABLE kms_realm_users (
  id TEXT PRIMARY KEY,
  realm_id TEXT NOT NULL,
  username TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  email TEXT,
  roles TEXT NOT NULL,
  tenants TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  metadata TEXT NOT NULL,
  metadata_schema TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_login_at TEXT,
  UNIQUE (realm_id, username)
);
CREATE TABLE kms_sessions (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  subject TEXT NOT NULL,
  username TEXT NOT NULL,
  scopes TEXT NOT NULL,
  tenants TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE INDEX kms_sessions_by_subject ON kms_sessions (subject);`,
  },
  // The hash-chained, append-only audit log (packages/infra/src/audit).
  auditMigration('kms', '0005_audit_log'),
  // Rate-limit buckets shared by every instance (packages/infra/src/db/shared-rate-limiter).
  rateLimitMigration('0006_rate_limit_buckets'),
  {
    // Failed sign-ins per username, shared by every instance (data/login-failure-repository).
    id: '0007_login_failures',
    sql: `
CREATE TABLE kms_login_failures (
  username TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  locked_until_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);`,
  },
  {
    // DPoP proofs already used (RFC 9449 §11.1), shared by every instance (data/dpop-proof-repository).
    id: '0008_dpop_proofs',
    sql: `
CREATE TABLE kms_dpop_proofs (
  id TEXT PRIMARY KEY,
  expires_ms BIGINT NOT NULL
);
CREATE INDEX kms_dpop_proofs_by_expiry ON kms_dpop_proofs (expires_ms);`,
  },
  {
    // Console sign-in through Identity (data/identity-login-repository): the pending logins (state, nonce,
    // PKCE verifier; single use, minutes long) and, on each session, Identity's session id so a
    // back-channel logout ends it.
    id: '0009_identity_browser_login',
    sql: `
CREATE TABLE kms_identity_logins (
  state TEXT PRIMARY KEY,
  nonce TEXT NOT NULL,
  code_verifier TEXT NOT NULL,
  return_to TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
ALTER TABLE kms_sessions ADD COLUMN identity_sid TEXT;
CREATE INDEX kms_sessions_by_identity_sid ON kms_sessions (identity_sid);`,
  },
  // The audit record's `subject`: on whose behalf a delegated token's actor called (RFC 8693 `act`).
  auditSubjectMigration('kms', '0010_audit_subject'),
];

/**
 * The tables of one tenant, created in its schema (`tenant_<uuid>`) when the tenant is. Names are unique
 * per tenant. SQLite cannot reference a table of another attached database, so there the content key
 * reference is not a foreign key (the barrier never deletes content keys).
 */
export const KMS_TENANT_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_elastic_keys',
    sql: (dialect, schema) => `
CREATE TABLE "${schema}".kms_elastic_keys (${ELASTIC_KEY_COLUMNS}
);
CREATE TABLE "${schema}".kms_material_keys (
  id TEXT PRIMARY KEY,
  elastic_key_id TEXT NOT NULL REFERENCES ${dialect === 'postgres' ? `"${schema}".` : ''}kms_elastic_keys (id),
  content_key_id TEXT${dialect === 'postgres' ? ' REFERENCES kms_content_keys (id)' : ''},
  jwe TEXT,
  clear_public TEXT,
  generate_date TEXT,
  import_date TEXT,
  expiration_date TEXT,
  revocation_date TEXT
);
${
  dialect === 'postgres'
    ? `CREATE INDEX kms_material_keys_by_elastic_key ON "${schema}".kms_material_keys (elastic_key_id, id);`
    : `CREATE INDEX "${schema}".kms_material_keys_by_elastic_key ON kms_material_keys (elastic_key_id, id);`
}`,
  },
  {
    // Versions (kms.md "Beyond the anchors"): 1, 2, … per elastic key, existing rows numbered in creation
    // order (ids are UUIDv7); the unique index makes two instances adding "the next version" at once
    // produce one winner. Also the version policy and rotation settings of an elastic key, the durable
    // count of encryptions reserved per version, and when a version's material was trimmed.
    id: '0002_key_versions',
    sql: (dialect, schema) => `
ALTER TABLE "${schema}".kms_material_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "${schema}".kms_material_keys ADD COLUMN encryption_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "${schema}".kms_material_keys ADD COLUMN destroy_date TEXT;
UPDATE "${schema}".kms_material_keys SET version = (SELECT COUNT(*) FROM "${schema}".kms_material_keys older
  WHERE older.elastic_key_id = kms_material_keys.elastic_key_id AND older.id <= kms_material_keys.id);
${
  dialect === 'postgres'
    ? `CREATE UNIQUE INDEX kms_material_keys_version ON "${schema}".kms_material_keys (elastic_key_id, version);`
    : `CREATE UNIQUE INDEX "${schema}".kms_material_keys_version ON kms_material_keys (elastic_key_id, version);`
}
ALTER TABLE "${schema}".kms_elastic_keys ADD COLUMN min_decryption_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "${schema}".kms_elastic_keys ADD COLUMN min_encryption_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "${schema}".kms_elastic_keys ADD COLUMN rotation_period TEXT;
ALTER TABLE "${schema}".kms_elastic_keys ADD COLUMN max_encryptions BIGINT;`,
  },
  {
    // BYOK (kms.md "Import with wrapping"): the tenant's RSA-4096 import wrapping key, its private part only
    // as a JWE under a content key; `generation` is unique so concurrent first uses insert one key. Material
    // keys imported from a public JWK alone are marked `public_only` (they encrypt and verify, nothing else).
    id: '0003_import_wrapping_keys',
    sql: (dialect, schema) => `
CREATE TABLE "${schema}".kms_import_wrapping_keys (
  id TEXT PRIMARY KEY,
  generation INTEGER NOT NULL UNIQUE,
  content_key_id TEXT${dialect === 'postgres' ? ' REFERENCES kms_content_keys (id)' : ''},
  jwe TEXT NOT NULL,
  clear_public TEXT NOT NULL,
  created_at TEXT NOT NULL
);
ALTER TABLE "${schema}".kms_material_keys ADD COLUMN public_only INTEGER NOT NULL DEFAULT 0;`,
  },
];
