/**
 * The tamper-evident audit log shared by both products (deployments.md "Audit log"): one event format,
 * an append-only table per product (`<product>_audit_log`), and a hash chain: each record's `hash` is the
 * SHA-256 of the previous record's hash and the record's own canonical JSON, so editing, deleting or
 * reordering any stored record breaks the chain at that record. Appends are serialized (PostgreSQL: a
 * table lock inside the transaction; SQLite: its single writer), so several instances keep one chain.
 * Records are also emitted as OpenTelemetry log records (exported with the other logs when telemetry is on,
 * free otherwise; not on stdout, which would halve the KMS's throughput). Never put plaintext,
 * key material, passwords, secrets or tokens in an event: ids only.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { trace } from '@opentelemetry/api';
import { SeverityNumber, logs } from '@opentelemetry/api-logs';
import type { Database, Queryable } from '../db/database.js';
import type { Migration } from '../db/migrations.js';
import { currentRequestContext } from '../request-context.js';

export type AuditProduct = 'kms' | 'identity';

export interface AuditEvent {
  /** Dotted name, e.g. `kms.encrypt`, `kms.elastic_key.create`, `identity.login.failed`. */
  event: string;
  /** Who: token `sub`/`client_id`, realm user subject, `api-key/<id>`, `certificate/<cn>`; null when unknown. */
  actor: string | null;
  /**
   * On whose behalf the actor acted, when that is someone else (delegation, RFC 8693: a token with `act`
   * names the acting client in `act` and the user in `sub`); absent or null when the actor acted for itself.
   */
  subject?: string | null;
  tenant: string | null;
  /** What it acted on (an id), or null. */
  resource: string | null;
  outcome: 'success' | 'failure';
  /** A stable reason code for failures (`insufficient_scope`, `invalid_token`, …). */
  reason: string | null;
}

export interface AuditRecord extends AuditEvent {
  seq: number;
  ts: string;
  product: AuditProduct;
  request_id: string | null;
  trace_id: string | null;
  prev_hash: string;
  hash: string;
}

/** The hash before the first record. */
export const GENESIS_HASH = '0'.repeat(64);

const COLUMNS =
  'seq, ts, product, event, actor, subject, tenant, resource, outcome, reason, request_id, trace_id, prev_hash, hash';

const COLUMN_NAMES = COLUMNS.split(', ');
/** The columns of a row of `json_to_recordset` (PostgreSQL). */
const RECORD_TYPES = COLUMN_NAMES.map((name) => `${name} ${name === 'seq' ? 'bigint' : 'text'}`).join(', ');
/** The columns read from each element of `json_each` (SQLite). */
const JSON_COLUMNS = COLUMN_NAMES.map((name) => `value ->> '${name}'`).join(', ');

/** The table of one product, with triggers that refuse UPDATE and DELETE (append-only). */
export function auditMigration(product: AuditProduct, id: string): Migration {
  const table = `${product}_audit_log`;
  const columns = `
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  product TEXT NOT NULL,
  event TEXT NOT NULL,
  actor TEXT,
  tenant TEXT,
  resource TEXT,
  outcome TEXT NOT NULL,
  reason TEXT,
  request_id TEXT,
  trace_id TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL`;
  return {
    id,
    sql: {
      sqlite: `CREATE TABLE ${table} (${columns}
);
CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
      postgres: `CREATE TABLE ${table} (${columns}
);
CREATE FUNCTION ${table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
  FOR EACH ROW EXECUTE FUNCTION ${table}_append_only();`,
    },
  };
}

/** Adds the `subject` column to a product's table made by `auditMigration` (an ALTER, so it never rewrites a record). */
export function auditSubjectMigration(product: AuditProduct, id: string): Migration {
  return { id, sql: `ALTER TABLE ${product}_audit_log ADD COLUMN subject TEXT;` };
}

/** JSON with keys in sorted order: the same record always hashes the same. */
export function canonicalJson(value: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, value[key]]),
    ),
  );
}

/** The hash of a record: SHA-256 over the previous hash and the record without its own `hash`. */
export function auditHash(record: Omit<AuditRecord, 'hash'>): string {
  // `subject` joined the record later: left out while empty, so records written before it still verify.
  const { subject, ...rest } = record;
  return createHash('sha256')
    .update(record.prev_hash)
    .update('\n')
    .update(canonicalJson(subject === null || subject === undefined ? rest : { ...rest, subject }))
    .digest('hex');
}

/** The record as an OTLP log record (body = event name, attributes = the record, linked to its trace). */
function emitAuditLogRecord(record: AuditRecord): void {
  const attributes: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(record)) if (value !== null) attributes[`audit.${key}`] = value;
  logs.getLogger('@cryptoutil/audit').emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: record.event,
    attributes,
  });
}

/** Text as the database can hold it: NUL replaced, and at most 500 characters. */
function storable(text: string | null): string | null {
  return text === null ? null : text.replaceAll('\u0000', '\ufffd').slice(0, 500);
}

type Row = Omit<AuditRecord, 'seq'> & { seq: number | string };
const toRecord = (row: Row): AuditRecord => ({ ...row, seq: Number(row.seq) });

export class AuditLog {
  readonly table: string;

  constructor(
    readonly db: Database,
    readonly product: AuditProduct,
    private readonly options: { now?: () => Date } = {},
  ) {
    this.table = `${product}_audit_log`;
  }

  /** Events waiting for the next group commit, with their context captured when they happened. */
  #pending: {
    entry: Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>;
    done: (r: AuditRecord) => void;
    fail: (e: unknown) => void;
  }[] = [];
  #flushing: Promise<void> | undefined;

  /**
   * Appends one event. In `tx`, it is written there and then (it commits or rolls back with the change it
   * records). Otherwise events are group-committed: everything appended while a write is under way goes
   * into the next transaction together, in order, so a busy service writes one chained batch instead of
   * one transaction per request. The promise resolves once the record is stored; under a request context
   * it is also registered there, so the request's answer can wait for it (audited-answer).
   */
  append(event: AuditEvent, tx?: Queryable): Promise<AuditRecord> {
    const span = trace.getActiveSpan()?.spanContext();
    const context = currentRequestContext();
    const entry = {
      ts: (this.options.now?.() ?? new Date()).toISOString(),
      product: this.product,
      ...event,
      // Names a client typed (a tried username, a presented client id) may hold anything; NUL cannot be stored.
      actor: storable(event.actor),
      ...(event.subject ? { subject: storable(event.subject) } : {}),
      resource: storable(event.resource),
      request_id: context?.requestId ?? null,
      trace_id: span?.traceId ?? null,
    };
    const stored = tx
      ? this.#write(tx, [entry]).then(([record]) => record as AuditRecord)
      : new Promise<AuditRecord>((done, fail) => {
          this.#pending.push({ entry, done, fail });
          this.#flushing ??= this.#drain();
        });
    // Never rejects (nobody may be waiting): true once stored, false if it could not be.
    context?.auditRecords?.push(
      stored.then(
        () => true,
        () => false,
      ),
    );
    return stored;
  }

  /** Resolves when every event appended so far is stored. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let the events of this turn of the event loop join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, 500);
      try {
        const records = await this.db.transaction((q) =>
          this.#write(
            q,
            batch.map((item) => item.entry),
          ),
        );
        batch.forEach((item, i) => item.done(records[i] as AuditRecord));
      } catch (error) {
        for (const item of batch) item.fail(error);
      }
    }
    this.#flushing = undefined;
  }

  /** Chains and inserts `entries` after the current head, inside the caller's transaction. */
  async #write(q: Queryable, entries: Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>[]): Promise<AuditRecord[]> {
    if (q.dialect === 'postgres') await q.exec(`LOCK TABLE ${this.table} IN EXCLUSIVE MODE`);
    const [head] = await q.all<{ seq: number | string; hash: string }>(
      sql.raw(`SELECT seq, hash FROM ${this.table} ORDER BY seq DESC LIMIT 1`),
    );
    let seq = head ? Number(head.seq) : 0;
    let previous = head?.hash ?? GENESIS_HASH;
    const records: AuditRecord[] = [];
    for (const entry of entries) {
      seq += 1;
      const unhashed: Omit<AuditRecord, 'hash'> = { seq, ...entry, prev_hash: previous };
      const record: AuditRecord = { ...unhashed, hash: auditHash(unhashed) };
      previous = record.hash;
      records.push(record);
    }
    // One statement per batch, with the same text whatever its size (prepared once): the rows as one JSON array.
    const rows = JSON.stringify(records);
    await q.run(
      q.dialect === 'postgres'
        ? sql`INSERT INTO ${sql.raw(this.table)} (${sql.raw(COLUMNS)}) SELECT ${sql.raw(COLUMNS)}
            FROM json_to_recordset(${rows}::text::json) AS r(${sql.raw(RECORD_TYPES)})`
        : sql`INSERT INTO ${sql.raw(this.table)} (${sql.raw(COLUMNS)}) SELECT ${sql.raw(JSON_COLUMNS)}
            FROM json_each(${rows}) ORDER BY key`,
    );
    for (const record of records) emitAuditLogRecord(record);
    return records;
  }

  /** The newest record, or undefined for an empty log. */
  async head(): Promise<AuditRecord | undefined> {
    const [row] = await this.db.all<Row>(sql.raw(`SELECT ${COLUMNS} FROM ${this.table} ORDER BY seq DESC LIMIT 1`));
    return row ? toRecord(row) : undefined;
  }

  /** Records in chain order, filtered, a page at a time. */
  async list(
    filter: { actor?: string; event?: string; from?: string; to?: string },
    page: { offset: number; limit: number },
  ): Promise<AuditRecord[]> {
    const conditions = [
      ...(filter.actor ? [sql`actor = ${filter.actor}`] : []),
      ...(filter.event ? [sql`event = ${filter.event}`] : []),
      ...(filter.from ? [sql`ts >= ${filter.from}`] : []),
      ...(filter.to ? [sql`ts < ${filter.to}`] : []),
    ];
    const where = conditions.length > 0 ? sql` WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
    const rows = await this.db.all<Row>(
      sql`SELECT ${sql.raw(COLUMNS)} FROM ${sql.raw(this.table)}${where} ORDER BY seq LIMIT ${page.limit} OFFSET ${page.offset}`,
    );
    return rows.map(toRecord);
  }
}

export type AuditVerification =
  { ok: true; records: number; head: string } | { ok: false; records: number; brokenAt: number; reason: string };

/**
 * Walks the whole chain in order and names the first record that does not fit. Removing the newest
 * records leaves a shorter valid chain: give a head published earlier (`expectedHead`) to catch that too.
 */
export async function verifyAuditChain(
  db: Queryable,
  product: AuditProduct,
  options: { expectedHead?: string } = {},
): Promise<AuditVerification> {
  const table = `${product}_audit_log`;
  const batch = 1000;
  let previous = GENESIS_HASH;
  let expectedSeq = 1;
  let records = 0;
  for (;;) {
    const rows = (
      await db.all<Row>(
        sql.raw(`SELECT ${COLUMNS} FROM ${table} WHERE seq >= ${expectedSeq} ORDER BY seq LIMIT ${batch}`),
      )
    ).map(toRecord);
    for (const record of rows) {
      const fail = (reason: string): AuditVerification => ({ ok: false, records, brokenAt: record.seq, reason });
      if (record.seq !== expectedSeq) return fail(`record ${expectedSeq} is missing (next is ${record.seq})`);
      if (record.prev_hash !== previous) return fail('prev_hash does not match the previous record');
      const { hash, ...unhashed } = record;
      if (auditHash(unhashed) !== hash) return fail('the record was changed after it was written');
      previous = hash;
      expectedSeq += 1;
      records += 1;
    }
    if (rows.length < batch) break;
  }
  let seen = options.expectedHead === undefined || options.expectedHead === GENESIS_HASH;
  if (!seen) {
    const [found] = await db.all(sql`SELECT 1 FROM ${sql.raw(table)} WHERE hash = ${options.expectedHead ?? ''}`);
    seen = found !== undefined;
  }
  if (!seen)
    return { ok: false, records, brokenAt: expectedSeq, reason: 'the expected head is gone: records were removed' };
  return { ok: true, records, head: previous };
}
