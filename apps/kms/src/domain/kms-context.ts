/**
 * What the use cases need. `KmsService` is the whole KMS (database, barrier, clock, tenants);
 * `KmsContext` is one tenant's slice of it: a view of the database that reaches that tenant's schema
 * and the names of its tables. Every elastic key use case takes a `KmsContext`, so it cannot touch
 * another tenant's keys.
 */
import type { Database } from '@cryptoutil/infra';
import type { Barrier } from '../barrier/barrier.js';
import type { TenantTables } from '../data/tenant-tables.js';
import type { EncryptionUsage } from './encryption-usage.js';
import type { TenantDirectory } from './tenant.js';

export interface KmsBase {
  db: Database;
  barrier: Barrier;
  now: () => Date;
  /** How long a deleted elastic key can be undeleted before its material is destroyed. */
  deleteGracePeriodMs: number;
  /** This process's blocks of reserved encryptions per version (max_encryptions). */
  usage: EncryptionUsage;
}

export interface KmsService extends KmsBase {
  tenants: TenantDirectory;
}

export interface KmsContext extends KmsBase {
  tenantId: string;
  tables: TenantTables;
}

export const DEFAULT_DELETE_GRACE_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;
