import { expect, it } from '@jest/globals';
import express, { type Express } from 'express';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import type { Database } from '../db/database.js';
import { requestIdMiddleware } from '../http-security.js';
import { describeEachDatabase } from '../testing/index.js';
import { AuditLog, auditMigration, auditSubjectMigration, type AuditEvent } from './audit-log.js';
import { answerAfterAuditRecords, holdAnswer } from './audited-answer.js';

const event = (name: string, outcome: 'success' | 'failure' = 'success'): AuditEvent => ({
  event: name,
  actor: 'tester',
  tenant: null,
  resource: null,
  outcome,
  reason: outcome === 'failure' ? 'refused' : null,
});

/** Routes that record while they run (not waiting) and one that records its outcome at the end. */
function app(audit: AuditLog): Express {
  const server = express();
  server.use(requestIdMiddleware(), answerAfterAuditRecords());
  server.post('/during', (_req, res) => {
    void audit.append(event('test.during')).catch(() => undefined);
    void audit.append(event('test.during.second')).catch(() => undefined);
    res.json({ ok: true });
  });
  server.post('/at-end', (_req, res) => {
    holdAnswer(res, () => audit.append(event('test.at_end', res.statusCode >= 400 ? 'failure' : 'success')));
    res.status(409).json({ refused: true });
  });
  return server;
}

const stored = async (db: Database) =>
  (await db.all<{ event: string; outcome: string }>(sql`SELECT event, outcome FROM kms_audit_log ORDER BY seq`)).map(
    (row) => `${row.event}:${row.outcome}`,
  );

describeEachDatabase('answers held until their audit records are stored', (database) => {
  it('answers only after the records of the request are in the table, with the final status recorded', async () => {
    const db = await database.open([
      auditMigration('kms', '0001_audit'),
      auditSubjectMigration('kms', '0002_audit_subject'),
    ]);
    const server = app(new AuditLog(db, 'kms'));
    const during = await request(server).post('/during');
    // Read straight from the table, no flush: what was answered is already stored.
    expect([during.status, await stored(db)]).toEqual([200, ['test.during:success', 'test.during.second:success']]);
    const atEnd = await request(server).post('/at-end');
    expect([atEnd.status, atEnd.body]).toEqual([409, { refused: true }]);
    expect((await stored(db)).at(-1)).toBe('test.at_end:failure');
  });

  it('answers 503 audit_unavailable, and not the result, when the record cannot be stored', async () => {
    const db = await database.open(); // no identity_audit_log table: every append fails
    const server = app(new AuditLog(db, 'identity'));
    for (const path of ['/during', '/at-end']) {
      const res = await request(server).post(path);
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 503, code: 'audit_unavailable', instance: path });
      expect([res.body.ok, res.body.refused]).toEqual([undefined, undefined]);
      expect(JSON.stringify(res.body)).not.toMatch(/identity_audit_log|stack|SQL/i);
    }
  });
});
