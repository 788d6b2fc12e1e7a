/** One table for every oidc-provider model (sessions, grants, codes, tokens, interactions, PAR, replay). */
import type { Migration } from '@cryptoutil/infra';

export const OIDC_MIGRATIONS: readonly Migration[] = [
  {
    id: '0100_oidc_models',
    sql: `
CREATE TABLE identity_oidc_models (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  grant_id TEXT,
  user_code TEXT,
  uid TEXT,
  expires_at BIGINT,
  consumed_at BIGINT,
  PRIMARY KEY (model, id)
);
CREATE INDEX identity_oidc_models_by_grant ON identity_oidc_models (grant_id);
CREATE INDEX identity_oidc_models_by_uid ON identity_oidc_models (model, uid);
CREATE INDEX identity_oidc_models_by_user_code ON identity_oidc_models (model, user_code);
CREATE INDEX identity_oidc_models_by_expiry ON identity_oidc_models (expires_at);`,
  },
];
