/** Tenant administration on the admin listener: list, create (schema created with it), delete (schema dropped). */
import { Router } from 'express';
import { z } from 'zod';
import { parseBody } from '@cryptoutil/infra';
import type { TenantRecord } from '../data/tenant-repository.js';
import type { TenantDirectory } from '../domain/tenant.js';
import { uuidParam } from './validation.js';

const createSchema = z.strictObject({
  name: z.string().trim().min(1).max(128),
  /** Optional: a canonical UUIDv4 chosen by the caller (e.g. the tenant id Identity puts in tokens). */
  id: z.string().optional(),
});

const tenantJson = (tenant: TenantRecord) => ({
  tenant_id: tenant.id,
  name: tenant.name,
  created_at: tenant.createdAt,
});

export function adminTenantsRouter(tenants: TenantDirectory): Router {
  const router = Router();
  router.get('/admin/v1/tenants', async (_req, res) => {
    res.json({ items: (await tenants.list()).map(tenantJson) });
  });
  router.post('/admin/v1/tenants', async (req, res) => {
    const body = parseBody(createSchema, req);
    const tenant = await tenants.create({ name: body.name, ...(body.id === undefined ? {} : { id: body.id }) });
    res.status(201).json(tenantJson(tenant));
  });
  router.delete('/admin/v1/tenants/:tenantId', async (req, res) => {
    await tenants.remove(uuidParam(req, 'tenantId'));
    res.status(204).end();
  });
  return router;
}
