/** `/admin/v1/users`: create, read, update (incl. password reset and unlock), delete, list. */
import { Router } from 'express';
import { z } from 'zod';
import { parseBody, type Database } from '@cryptoutil/infra';
import {
  createUser,
  deletePasskey,
  deleteUser,
  getUser,
  listPasskeys,
  listUsers,
  updateUser,
} from '../domain/users.js';
import { pageQuery } from './paging.js';
import { listJson, passkeyJson, userJson } from './presenters.js';

const username = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'use 1-64 letters, digits, ".", "_", "@" or "-"');
const password = z.string().min(12, 'needs at least 12 characters').max(1024);
const roles = z.array(z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/, 'is not a role name')).max(64);

export const userCreateSchema = z.strictObject({
  username,
  password,
  email: z.email().optional(),
  name: z.string().min(1).max(256).optional(),
  roles: roles.optional(),
  tenant_id: z.uuid().optional(),
  enabled: z.boolean().optional(),
  /** Enrol a TOTP authenticator at the next sign-in. */
  totp_required: z.boolean().optional(),
  /** Register a passkey at the next sign-in. */
  passkey_required: z.boolean().optional(),
});

export const userUpdateSchema = z
  .strictObject({
    password: password.optional(),
    email: z.email().nullable().optional(),
    name: z.string().min(1).max(256).nullable().optional(),
    roles: roles.optional(),
    tenant_id: z.uuid().nullable().optional(),
    enabled: z.boolean().optional(),
    unlock: z.literal(true).optional(),
    totp_required: z.boolean().optional(),
    /** Forget the enrolled authenticator (e.g. a lost phone). */
    reset_totp: z.literal(true).optional(),
    passkey_required: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'name at least one field to change');

export function usersRouter(db: Database): Router {
  const router = Router();
  router.post('/admin/v1/users', async (req, res) => {
    const body = parseBody(userCreateSchema, req);
    const user = await createUser(db, {
      ...body,
      tenantId: body.tenant_id,
      totpRequired: body.totp_required,
      passkeyRequired: body.passkey_required,
    });
    res.status(201).location(`/admin/v1/users/${user.id}`).json(userJson(user));
  });
  router.get('/admin/v1/users', async (req, res) => {
    res.json(listJson(await listUsers(db, pageQuery(req)), userJson));
  });
  router.get('/admin/v1/users/:id', async (req, res) => {
    res.json(userJson(await getUser(db, req.params.id)));
  });
  router.patch('/admin/v1/users/:id', async (req, res) => {
    const body = parseBody(userUpdateSchema, req);
    const {
      tenant_id: tenantId,
      totp_required: totpRequired,
      reset_totp: resetTotp,
      passkey_required: passkeyRequired,
      ...rest
    } = body;
    res.json(
      userJson(await updateUser(db, req.params.id, { ...rest, tenantId, totpRequired, resetTotp, passkeyRequired })),
    );
  });
  router.delete('/admin/v1/users/:id', async (req, res) => {
    await deleteUser(db, req.params.id);
    res.status(204).end();
  });
  router.get('/admin/v1/users/:id/passkeys', async (req, res) => {
    res.json({ items: (await listPasskeys(db, req.params.id)).map(passkeyJson) });
  });
  router.delete('/admin/v1/users/:id/passkeys/:credentialId', async (req, res) => {
    await deletePasskey(db, req.params.id, req.params.credentialId);
    res.status(204).end();
  });
  return router;
}
