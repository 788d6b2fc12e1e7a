/** What every use case needs: the database, the barrier and a clock (injected so tests control time). */
import type { Database } from '@cryptoutil/infra';
import type { Barrier } from '../barrier/barrier.js';

export interface KmsContext {
  db: Database;
  barrier: Barrier;
  now: () => Date;
  /** How long a deleted elastic key can be undeleted before its material is destroyed. */
  deleteGracePeriodMs: number;
}

export const DEFAULT_DELETE_GRACE_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;
