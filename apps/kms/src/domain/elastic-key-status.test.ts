import { AppError } from '@cryptoutil/infra';
import {
  ELASTIC_KEY_STATUSES,
  assertActive,
  isElasticKeyStatus,
  nextStatus,
  type ElasticKeyEvent,
  type ElasticKeyStatus,
} from './elastic-key-status.js';

function conflictCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError && error.status === 409) return error.code;
  }
  return undefined;
}

describe('elastic key status machine', () => {
  it.each<[ElasticKeyStatus, ElasticKeyEvent, ElasticKeyStatus]>([
    ['creating', 'material_generated', 'active'],
    ['creating', 'await_import', 'pending_import'],
    ['creating', 'generate_failed', 'generate_failed'],
    ['pending_import', 'material_imported', 'active'],
    ['pending_import', 'import_failed', 'import_failed'],
    ['active', 'disable', 'disabled'],
    ['disabled', 'enable', 'active'],
    ['active', 'material_generated', 'active'],
    ['active', 'delete', 'pending_delete_was_active'],
    ['disabled', 'delete', 'pending_delete_was_disabled'],
    ['pending_import', 'delete', 'pending_delete_was_pending_import'],
    ['pending_delete_was_disabled', 'undelete', 'disabled'],
    ['pending_delete_was_active', 'undelete', 'active'],
    ['pending_delete_was_active', 'start_destroy', 'started_delete'],
    ['started_delete', 'finish_destroy', 'finished_delete'],
  ])('%s --%s--> %s', (from, event, to) => {
    expect(nextStatus(from, event)).toBe(to);
  });

  it.each<[ElasticKeyStatus, ElasticKeyEvent]>([
    ['active', 'enable'],
    ['disabled', 'disable'],
    ['disabled', 'material_generated'],
    ['active', 'undelete'],
    ['pending_delete_was_active', 'delete'],
    ['pending_delete_was_active', 'enable'],
    ['started_delete', 'undelete'],
    ['finished_delete', 'delete'],
  ])('refuses %s --%s--> with 409 invalid_status_transition', (from, event) => {
    expect(conflictCode(() => nextStatus(from, event))).toBe('invalid_status_transition');
  });

  it('lists every contract status and recognises only those', () => {
    expect(ELASTIC_KEY_STATUSES).toEqual(
      expect.arrayContaining(['creating', 'active', 'disabled', 'pending_delete_was_active', 'finished_delete']),
    );
    expect(isElasticKeyStatus('pending_delete_was_disabled')).toBe(true);
    expect(isElasticKeyStatus('deleted')).toBe(false);
  });

  it('allows crypto only on active keys', () => {
    expect(() => assertActive('active')).not.toThrow();
    for (const status of ELASTIC_KEY_STATUSES.filter((s) => s !== 'active')) {
      expect(conflictCode(() => assertActive(status))).toBe('elastic_key_not_active');
    }
  });
});
