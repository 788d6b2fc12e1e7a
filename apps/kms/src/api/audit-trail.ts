/**
 * One audit event per API operation (deployments.md "Audit log"; admin calls: infra's adminAuditTrail),
 * stored before the answer leaves (holdAnswer; 503 `audit_unavailable` if it cannot be): who (the principal, or
 * null when authentication failed; for a delegated token the acting client, with the user it acted for as
 * `subject`), which tenant, which key (the first id in the path), the outcome and, for a failure, its problem code.
 * A batch call that is answered records one event per item instead (`recordBatchItems`), each with that
 * item's outcome. Nothing of the request or response bodies is recorded.
 */
import type { Request, RequestHandler, Response } from 'express';
import { holdAnswer, type AuditLog, type Logger } from '@cryptoutil/infra';
import type { KmsContext } from '../domain/kms-context.js';
import { operationOf } from './access.js';
import type { KmsPrincipal } from './authentication.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** Per item of an answered batch call, in order: null for a success, else the item's problem code. */
export function recordBatchItems(res: Response, reasons: (string | null)[]): void {
  res.locals.batchItems = reasons;
}

function record(audit: AuditLog, req: Request, res: Response, event: string): Promise<unknown> {
  const principal = res.locals.principal as KmsPrincipal | undefined;
  const failed = res.statusCode >= 400;
  const base = {
    event,
    // A delegated token: the client acted (actor) for the user (subject).
    actor: principal?.actor ?? principal?.subject ?? null,
    subject: principal?.actor ? principal.subject : null,
    tenant: (res.locals.kms as KmsContext | undefined)?.tenantId ?? null,
    resource: UUID.exec(req.path)?.[0] ?? null,
  };
  const items = res.locals.batchItems as (string | null)[] | undefined;
  if (!failed && items) {
    // Appended together, so the audit log's group commit stores them in one transaction.
    return Promise.all(
      items.map((reason) => audit.append({ ...base, outcome: reason === null ? 'success' : 'failure', reason })),
    );
  }
  return audit.append({
    ...base,
    outcome: failed ? 'failure' : 'success',
    reason: failed ? String(res.locals.problemCode ?? res.statusCode) : null,
  });
}

/** Service and browser API: `kms.encrypt`, `kms.pool.create`, `kms.key.rotate`, … (the operation's scope). */
export function apiAuditTrail(audit: AuditLog, logger?: Logger): RequestHandler {
  return (req, res, next) => {
    const operation = operationOf(req);
    if (operation) holdAnswer(res, () => record(audit, req, res, operation.scope.replaceAll(':', '.')), logger);
    next();
  };
}
