import { expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { createHash } from 'node:crypto';
import { describeEachDatabase } from '../testing/index.js';
import {
  AuditLog,
  GENESIS_HASH,
  auditMigration,
  auditSubjectMigration,
  canonicalJson,
  verifyAuditChain,
  type AuditEvent,
} from './audit-log.js';

const MIGRATIONS = [auditMigration('kms', '0001_audit'), auditSubjectMigration('kms', '0002_audit_subject')];
const event = (n: number): AuditEvent => ({
  event: 'kms.encrypt',
  actor: `user-${n % 3}`,
  tenant: null,
  resource: `key-${n}`,
  outcome: n % 4 === 0 ? 'failure' : 'success',
  reason: n % 4 === 0 ? 'insufficient_scope' : null,
});

describeEachDatabase('the audit log', (database) => {
  it('chains records by hash; verification names the first edited, deleted or reordered one', async () => {
    const db = await database.open(MIGRATIONS);
    const log = new AuditLog(db, 'kms');
    for (let n = 1; n <= 6; n++) await log.append(event(n));
    const good = await verifyAuditChain(db, 'kms');
    expect(good).toMatchObject({ ok: true, records: 6 });
    expect((await log.head())?.hash).toBe(good.ok ? good.head : '');
    const [first] = await log.list({}, { offset: 0, limit: 1 });
    expect(first).toMatchObject({ seq: 1, prev_hash: GENESIS_HASH, product: 'kms' });
    expect(await log.list({ actor: 'user-1', event: 'kms.encrypt' }, { offset: 0, limit: 10 })).toHaveLength(2);

    // Append-only: the database itself refuses changes.
    const refused = await db.run(sql`UPDATE kms_audit_log SET actor = 'mallory' WHERE seq = 3`).then(
      () => 'changed',
      (error: unknown) => String(error),
    );
    expect(refused).toMatch(/append-only/);

    // Someone with the power to drop the guard edits, deletes and reorders: each is found.
    const unguard =
      db.dialect === 'postgres'
        ? 'ALTER TABLE kms_audit_log DISABLE TRIGGER kms_audit_log_append_only'
        : 'DROP TRIGGER kms_audit_log_no_update; DROP TRIGGER kms_audit_log_no_delete';
    await db.exec(unguard);
    await db.run(sql`UPDATE kms_audit_log SET actor = 'mallory' WHERE seq = 3`);
    expect(await verifyAuditChain(db, 'kms')).toMatchObject({ ok: false, brokenAt: 3, records: 2 });
    await db.run(sql`UPDATE kms_audit_log SET actor = 'user-0' WHERE seq = 3`);
    expect(await verifyAuditChain(db, 'kms')).toMatchObject({ ok: true });
    await db.run(sql`UPDATE kms_audit_log SET seq = 100 WHERE seq = 5`);
    await db.run(sql`UPDATE kms_audit_log SET seq = 5 WHERE seq = 4`);
    await db.run(sql`UPDATE kms_audit_log SET seq = 4 WHERE seq = 100`);
    expect(await verifyAuditChain(db, 'kms')).toMatchObject({ ok: false, brokenAt: 4 });
    await db.run(sql`DELETE FROM kms_audit_log WHERE seq = 2`);
    expect(await verifyAuditChain(db, 'kms')).toMatchObject({
      ok: false,
      brokenAt: 3,
      reason: expect.stringMatching(/record 2 is missing/),
    });
    const head = good.ok ? good.head : '';
    await db.run(sql`DELETE FROM kms_audit_log WHERE seq >= 2`);
    expect(await verifyAuditChain(db, 'kms')).toMatchObject({ ok: true, records: 1 });
    expect(await verifyAuditChain(db, 'kms', { expectedHead: head })).toMatchObject({ ok: false });
  });

  it('records a subject beside the actor; records without one hash as they did before the column', async () => {
    const db = await database.open([
      auditMigration('identity', '0101_identity_audit'),
      auditSubjectMigration('identity', '0102_identity_audit_subject'),
    ]);
    const log = new AuditLog(db, 'identity');
    await log.append(event(1));
    const delegated = await log.append({ ...event(2), actor: 'kms-service', subject: 'user-7' });
    expect(delegated).toMatchObject({ actor: 'kms-service', subject: 'user-7' });
    await log.append(event(3));
    expect(await verifyAuditChain(db, 'identity')).toMatchObject({ ok: true, records: 3 });
    const [plain, stored] = await log.list({}, { offset: 0, limit: 2 });
    expect(stored).toMatchObject({ seq: 2, actor: 'kms-service', subject: 'user-7' });
    // A record without a subject has the hash the format had before the column existed.
    const { hash, subject, ...before } = plain!;
    expect(subject).toBeNull();
    expect(createHash('sha256').update(before.prev_hash).update('\n').update(canonicalJson(before)).digest('hex')).toBe(
      hash,
    );
    // The subject is covered by the hash like every other field.
    await db.exec(
      db.dialect === 'postgres'
        ? 'ALTER TABLE identity_audit_log DISABLE TRIGGER identity_audit_log_append_only'
        : 'DROP TRIGGER identity_audit_log_no_update',
    );
    await db.run(sql`UPDATE identity_audit_log SET subject = 'user-8' WHERE seq = 2`);
    expect(await verifyAuditChain(db, 'identity')).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('keeps one valid chain with concurrent writers (two connections)', async () => {
    const one = await database.open(MIGRATIONS);
    const two = await database.open();
    // Two connections to one PostgreSQL schema; on in-memory SQLite the second is a fresh database.
    const second = database.dialect === 'postgres' ? two : one;
    const writers = [new AuditLog(one, 'kms'), new AuditLog(second, 'kms')];
    const before = (await writers[0]!.head())?.seq ?? 0;
    // Group commits from both writers interleave; each batch chains onto whatever the other stored last.
    await Promise.all(Array.from({ length: 40 }, (_, n) => writers[n % 2]!.append(event(n))));
    const inTransaction = await one.transaction((tx) => writers[0]!.append(event(99), tx));
    expect(inTransaction.seq).toBe(before + 41);
    expect(await verifyAuditChain(one, 'kms')).toMatchObject({ ok: true, records: before + 41 });
  });
});
