/**
 * One audit event per API operation (deployments.md "Audit log"; admin calls: infra's adminAuditTrail),
 * written when the response is finished: who (the principal, or null when authentication failed), which
 * tenant, which key (the first id in the path), the outcome and, for a failure, its problem code.
 * Nothing of the request or response bodies is recorded.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { AuditLog, Logger } from '@cryptoutil/infra';
import type { KmsContext } from '../domain/kms-context.js';
import { operationOf } from './access.js';
import type { KmsPrincipal } from './authentication.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

function record(audit: AuditLog, logger: Logger | undefined, req: Request, res: Response, event: string): void {
  const principal = res.locals.principal as KmsPrincipal | undefined;
  const failed = res.statusCode >= 400;
  audit
    .append({
      event,
      actor: principal?.subject ?? null,
      tenant: (res.locals.kms as KmsContext | undefined)?.tenantId ?? null,
      resource: UUID.exec(req.path)?.[0] ?? null,
      outcome: failed ? 'failure' : 'success',
      reason: failed ? String(res.locals.problemCode ?? res.statusCode) : null,
    })
    .catch((error: unknown) => logger?.error('writing the audit log failed', { event, error }));
}

/** Service and browser API: `kms.encrypt`, `kms.pool.create`, `kms.key.rotate`, … (the operation's scope). */
export function apiAuditTrail(audit: AuditLog, logger?: Logger): RequestHandler {
  return (req, res, next) => {
    const operation = operationOf(req);
    if (operation) res.once('finish', () => record(audit, logger, req, res, operation.scope.replaceAll(':', '.')));
    next();
  };
}
