/**
 * Database realm users on the admin listener: list, create, read, change, delete. Password hashes never
 * leave the service; a password is only ever accepted, in the request that sets it.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseBody } from '@cryptoutil/infra';
import type { RealmUserRecord } from '../data/realm-user-repository.js';
import {
  changeRealmUser,
  createRealmUser,
  getRealmUser,
  listUsersOfRealm,
  removeRealmUser,
  type RealmUserDeps,
} from '../domain/realm-user.js';
import { pageRequest, uuidParam } from './validation.js';

const fields = {
  password: z.string().min(12).max(1024),
  email: z.email().max(320),
  roles: z.array(z.string().min(1).max(128)).max(64),
  tenants: z.array(z.string()).max(256),
  enabled: z.boolean(),
  metadata: z.record(z.string(), z.unknown()),
  metadata_schema: z.string().max(2048),
};

const createSchema = z.strictObject({
  username: z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'letters, digits and . _ @ - (at most 128)'),
  password: fields.password,
  email: fields.email.optional(),
  roles: fields.roles.default([]),
  tenants: fields.tenants.default([]),
  enabled: fields.enabled.default(true),
  metadata: fields.metadata.default({}),
  metadata_schema: fields.metadata_schema.optional(),
});

const changeSchema = z.strictObject({
  password: fields.password.optional(),
  email: fields.email.optional(),
  roles: fields.roles.optional(),
  tenants: fields.tenants.optional(),
  enabled: fields.enabled.optional(),
  metadata: fields.metadata.optional(),
  metadata_schema: fields.metadata_schema.optional(),
});

const userJson = (user: RealmUserRecord) => ({
  id: user.id,
  realm_id: user.realmId,
  username: user.username,
  email: user.email,
  roles: user.roles,
  tenants: user.tenants,
  enabled: user.enabled,
  metadata: user.metadata,
  metadata_schema: user.metadataSchema,
  created_at: user.createdAt,
  updated_at: user.updatedAt,
  last_login_at: user.lastLoginAt,
});

export function adminRealmUsersRouter(deps: RealmUserDeps): Router {
  const router = Router();
  const base = '/admin/v1/realms/:realmId/users';
  router.get('/admin/v1/realms', (_req, res) => {
    res.json({
      priority: deps.realms.priority,
      items: [...deps.realms.databaseRealms.values()].map((realm) => ({
        id: realm.id,
        name: realm.name,
        type: 'database',
        roles: [...realm.roles.keys()],
      })),
    });
  });
  router.get(base, async (req, res) => {
    const page = pageRequest(req, []);
    const result = await listUsersOfRealm(deps, uuidParam(req, 'realmId'), page);
    res.json({ items: result.items.map(userJson), page: page.page, size: page.size, total: result.total });
  });
  router.post(base, async (req, res) => {
    const body = parseBody(createSchema, req);
    const user = await createRealmUser(deps, uuidParam(req, 'realmId'), {
      ...body,
      metadataSchema: body.metadata_schema,
    });
    res.status(201).json(userJson(user));
  });
  router.get(`${base}/:userId`, async (req, res) => {
    res.json(userJson(await getRealmUser(deps, uuidParam(req, 'realmId'), uuidParam(req, 'userId'))));
  });
  router.patch(`${base}/:userId`, async (req, res) => {
    const { metadata_schema: metadataSchema, ...change } = parseBody(changeSchema, req);
    const user = await changeRealmUser(deps, uuidParam(req, 'realmId'), uuidParam(req, 'userId'), {
      ...change,
      metadataSchema,
    });
    res.json(userJson(user));
  });
  router.delete(`${base}/:userId`, async (req, res) => {
    await removeRealmUser(deps, uuidParam(req, 'realmId'), uuidParam(req, 'userId'));
    res.status(204).end();
  });
  return router;
}
