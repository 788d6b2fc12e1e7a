import { expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AuditLog, auditMigration, auditSubjectMigration, migrate, openDatabase } from '@cryptoutil/infra';

const TOOL = resolve(import.meta.dirname ?? '.', '../dist/audit-verify.js');

it('pnpm audit:verify says an intact chain is intact and names the first changed record (exit 0, 1, 2)', async () => {
  const url = `sqlite:${join(await mkdtemp(join(tmpdir(), 'audit-verify-')), 'kms.sqlite')}`;
  const db = await openDatabase({ url });
  await migrate(db, [auditMigration('kms', '0001_audit'), auditSubjectMigration('kms', '0002_audit_subject')]);
  const log = new AuditLog(db, 'kms');
  for (const resource of ['a', 'b', 'c', 'd']) {
    await log.append({
      event: 'kms.encrypt',
      actor: 'alice',
      tenant: null,
      resource,
      outcome: 'success',
      reason: null,
    });
  }
  const run = () => spawnSync(process.execPath, [TOOL, '--product', 'kms', '--database', url], { encoding: 'utf8' });
  const intact = run();
  expect([intact.status, intact.stdout]).toEqual([
    0,
    expect.stringMatching(/kms audit log intact: 4 records, head [0-9a-f]{64}/),
  ]);
  await db.exec('DROP TRIGGER kms_audit_log_no_update');
  await db.exec("UPDATE kms_audit_log SET actor = 'mallory' WHERE seq = 3");
  await db.close();
  const broken = run();
  expect([broken.status, broken.stdout]).toEqual([
    1,
    expect.stringMatching(/BROKEN at record 3: the record was changed/),
  ]);
  const nothing = spawnSync(process.execPath, [TOOL, '--product', 'identity', '--database', url], { encoding: 'utf8' });
  expect([nothing.status, nothing.stderr]).toEqual([2, expect.stringMatching(/identity_audit_log/)]);
});
