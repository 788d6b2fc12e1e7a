/** The audit log on the admin listener: the chain head, paged events with filters, and a full verification. */
import { Router } from 'express';
import { verifyAuditChain, type AuditLog } from '@cryptoutil/infra';
import { queryDate, queryString } from './validation.js';

const PAGE_SIZE_MAX = 1000;

export function adminAuditRouter(audit: AuditLog): Router {
  const router = Router();
  router.get('/admin/v1/audit', async (req, res) => {
    const size = Math.min(Number(queryString(req, 'size') ?? 100) || 100, PAGE_SIZE_MAX);
    const page = Math.max(Number(queryString(req, 'page') ?? 0) || 0, 0);
    const actor = queryString(req, 'actor');
    const event = queryString(req, 'event');
    const from = queryDate(req, 'from');
    const to = queryDate(req, 'to');
    const items = await audit.list(
      {
        ...(actor ? { actor } : {}),
        ...(event ? { event } : {}),
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
      },
      { offset: page * size, limit: size },
    );
    res.json({ head: (await audit.head())?.hash ?? null, page, size, items });
  });
  router.get('/admin/v1/audit/verify', async (_req, res) => {
    res.json(await verifyAuditChain(audit.db, audit.product));
  });
  return router;
}
