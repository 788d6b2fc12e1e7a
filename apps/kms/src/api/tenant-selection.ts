/**
 * Which tenant a request acts for (integration.md "Tenants"): always one of the authenticated principal's
 * tenants, never a path or query value. `X-Tenant-ID` may pick one of them; a malformed one is `400
 * invalid_tenant_id`, one the principal does not have is `403 tenant_forbidden`. Without the header the
 * principal's first tenant is used; a principal with no tenant (and an open, loopback-only KMS) acts in
 * the default tenant.
 */
import type { RequestHandler, Response } from 'express';
import { ForbiddenError, ValidationError, isCanonicalUuidV4 } from '@cryptoutil/infra';
import type { KmsContext } from '../domain/kms-context.js';
import type { TenantDirectory } from '../domain/tenant.js';
import type { KmsPrincipal } from './authentication.js';

export const TENANT_HEADER = 'X-Tenant-ID';

/** The authenticated caller, set by access control; absent on an open (unauthenticated) KMS. */
export function requestPrincipal(res: Response): KmsPrincipal | undefined {
  return res.locals.principal as KmsPrincipal | undefined;
}

export function tenantContext(res: Response): KmsContext {
  const context = res.locals.kms as KmsContext | undefined;
  if (!context) throw new Error('tenantSelection must run before the API routers');
  return context;
}

export function tenantSelection(tenants: TenantDirectory): RequestHandler {
  return async (req, res, next) => {
    try {
      const selected = req.get(TENANT_HEADER);
      if (selected !== undefined && !isCanonicalUuidV4(selected)) {
        throw new ValidationError(`${TENANT_HEADER} must be a canonical UUIDv4 (8-4-4-4-12 hexadecimal digits).`, {
          code: 'invalid_tenant_id',
        });
      }
      const own = requestPrincipal(res)?.tenants ?? [];
      const allowed = own.length > 0 ? own : [tenants.defaultTenant.id];
      const tenant = selected ?? allowed[0] ?? tenants.defaultTenant.id;
      // A credential naming a malformed tenant acts for none.
      if (!allowed.includes(tenant) || !isCanonicalUuidV4(tenant)) {
        throw new ForbiddenError('tenant_forbidden', {
          detail: `The caller does not act for the tenant in ${TENANT_HEADER}.`,
        });
      }
      res.locals.kms = await tenants.provision(tenant);
      next();
    } catch (error) {
      next(error);
    }
  };
}
