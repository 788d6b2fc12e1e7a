/**
 * The elastic key status machine (kms.md "Statuses"). Only `active` keys do crypto; every
 * other status refuses it. A soft delete remembers the status it left in its own name
 * (`pending_delete_was_<x>`) so that undelete can restore exactly that status.
 */
import { ConflictError } from '@cryptoutil/infra';

export const RESTORABLE_STATUSES = [
  'creating',
  'pending_generate',
  'generate_failed',
  'pending_import',
  'import_failed',
  'active',
  'disabled',
] as const;

export type RestorableStatus = (typeof RESTORABLE_STATUSES)[number];
export type PendingDeleteStatus = `pending_delete_was_${RestorableStatus}`;
export type ElasticKeyStatus = RestorableStatus | PendingDeleteStatus | 'started_delete' | 'finished_delete';

export const ELASTIC_KEY_STATUSES: readonly ElasticKeyStatus[] = [
  ...RESTORABLE_STATUSES,
  ...RESTORABLE_STATUSES.map((status): PendingDeleteStatus => `pending_delete_was_${status}`),
  'started_delete',
  'finished_delete',
];

export type ElasticKeyEvent =
  | 'material_generated'
  | 'generate_failed'
  | 'await_import'
  | 'material_imported'
  | 'import_failed'
  | 'disable'
  | 'enable'
  | 'delete'
  | 'undelete'
  | 'start_destroy'
  | 'finish_destroy';

const PENDING_DELETE_PREFIX = 'pending_delete_was_';

export function isElasticKeyStatus(value: string): value is ElasticKeyStatus {
  return (ELASTIC_KEY_STATUSES as readonly string[]).includes(value);
}

export function isPendingDelete(status: ElasticKeyStatus): status is PendingDeleteStatus {
  return status.startsWith(PENDING_DELETE_PREFIX);
}

/** The status a pending-delete key returns to on undelete. */
export function statusBeforeDelete(status: PendingDeleteStatus): RestorableStatus {
  return status.slice(PENDING_DELETE_PREFIX.length) as RestorableStatus;
}

const TRANSITIONS: Partial<Record<ElasticKeyStatus, Partial<Record<ElasticKeyEvent, ElasticKeyStatus>>>> = {
  creating: { material_generated: 'active', generate_failed: 'generate_failed', await_import: 'pending_import' },
  pending_generate: { material_generated: 'active', generate_failed: 'generate_failed' },
  generate_failed: { material_generated: 'active' },
  pending_import: { material_imported: 'active', import_failed: 'import_failed' },
  import_failed: { material_imported: 'active' },
  active: { disable: 'disabled', material_generated: 'active', material_imported: 'active' },
  disabled: { enable: 'active' },
  started_delete: { finish_destroy: 'finished_delete' },
};

/**
 * The status after `event`, or a `409 invalid_status_transition` naming both.
 * Delete is allowed from every restorable status; undelete and destroy only from pending delete.
 */
export function nextStatus(current: ElasticKeyStatus, event: ElasticKeyEvent): ElasticKeyStatus {
  if (event === 'delete' && !isPendingDelete(current) && (RESTORABLE_STATUSES as readonly string[]).includes(current)) {
    return `${PENDING_DELETE_PREFIX}${current as RestorableStatus}`;
  }
  if (isPendingDelete(current)) {
    if (event === 'undelete') return statusBeforeDelete(current);
    if (event === 'start_destroy') return 'started_delete';
  }
  const next = TRANSITIONS[current]?.[event];
  if (next === undefined) {
    throw new ConflictError('invalid_status_transition', {
      detail: `An elastic key in status '${current}' cannot '${event}'.`,
      extensions: { status: current, action: event },
    });
  }
  return next;
}

/** Crypto (encrypt, decrypt, sign, verify, generate) is only allowed on active keys. */
export function assertActive(status: ElasticKeyStatus): void {
  if (status !== 'active') {
    throw new ConflictError('elastic_key_not_active', {
      detail: `The elastic key is '${status}'; only active keys perform cryptographic operations.`,
      extensions: { status },
    });
  }
}
