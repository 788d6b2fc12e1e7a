/**
 * The audit log over HTTP, the same for both products: a trail of the admin listener's state-changing calls
 * (`<product>.admin.<path>.<method>`, ids left out of the name and kept as the resource), and the read side
 * (`GET /admin/v1/audit` with the chain head, filters and pages; `GET /admin/v1/audit/verify`).
 */
import { Router, type Request, type RequestHandler } from 'express';
import { ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { verifyAuditChain, type AuditLog } from './audit-log.js';
import { holdAnswer } from './audited-answer.js';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The client certificate's common name (admin listeners use mTLS), as `certificate/<cn>`. */
function certificateSubject(req: Request): string | null {
  const socket = req.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } };
  const name = socket.getPeerCertificate?.()?.subject?.CN;
  return name ? `certificate/${name}` : null;
}

/** Each state-changing admin call's record is stored before its answer leaves (holdAnswer). */
export function adminAuditTrail(audit: AuditLog, logger?: Logger): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    const segments = req.path
      .replace(/^\/admin\/v1\//, '')
      .split('/')
      .filter(Boolean);
    const name = segments.filter((segment) => !ID.test(segment)).join('.');
    const resource = segments.find((segment) => ID.test(segment)) ?? null;
    holdAnswer(
      res,
      () => {
        const failed = res.statusCode >= 400;
        return audit.append({
          event: `${audit.product}.admin.${name}.${req.method.toLowerCase()}`,
          actor: (res.locals.adminActor as string | undefined) ?? certificateSubject(req),
          tenant: null,
          resource,
          outcome: failed ? 'failure' : 'success',
          reason: failed ? String(res.locals.problemCode ?? res.statusCode) : null,
        });
      },
      logger,
    );
    next();
  };
}

function text(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ValidationError(`${name} may be given once.`, { code: 'invalid_query' });
  return value;
}

function date(req: Request, name: string): string | undefined {
  const value = text(req, name);
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) {
    throw new ValidationError(`${name} must be an ISO 8601 date.`, { code: 'invalid_query' });
  }
  return parsed.toISOString();
}

export function auditAdminRouter(audit: AuditLog): Router {
  const router = Router();
  router.get('/admin/v1/audit', async (req, res) => {
    const size = Math.min(Math.max(Number(text(req, 'size') ?? 100) || 100, 1), 1000);
    const page = Math.max(Number(text(req, 'page') ?? 0) || 0, 0);
    const actor = text(req, 'actor');
    const event = text(req, 'event');
    const from = date(req, 'from');
    const to = date(req, 'to');
    const items = await audit.list(
      { ...(actor ? { actor } : {}), ...(event ? { event } : {}), ...(from ? { from } : {}), ...(to ? { to } : {}) },
      { offset: page * size, limit: size },
    );
    res.json({ head: (await audit.head())?.hash ?? null, page, size, items });
  });
  router.get('/admin/v1/audit/verify', async (_req, res) => {
    await audit.flush();
    res.json(await verifyAuditChain(audit.db, audit.product));
  });
  return router;
}
