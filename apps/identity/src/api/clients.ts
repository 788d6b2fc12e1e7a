/** `/admin/v1/clients`: create, read, update, delete, list, and secret rotation. */
import { Router } from 'express';
import { z } from 'zod';
import { parseBody, type Database } from '@cryptoutil/infra';
import {
  createClient,
  deleteClient,
  getClient,
  listClients,
  rotateClientSecret,
  updateClient,
  type ClientMetadataValidator,
} from '../domain/clients.js';
import { pageQuery } from './paging.js';
import { clientJson, clientWithSecretJson, listJson } from './presenters.js';

/** The metadata an administrator sets; oidc-provider checks the combination before it is stored. */
const metadataFields = {
  client_name: z.string().min(1).max(256),
  grant_types: z
    .array(
      z.enum([
        'authorization_code',
        'refresh_token',
        'client_credentials',
        // RFC 8693 token exchange (provider/token-exchange.ts): confidential clients only.
        'urn:ietf:params:oauth:grant-type:token-exchange',
      ]),
    )
    .min(1),
  redirect_uris: z.array(z.url()).max(32),
  post_logout_redirect_uris: z.array(z.url()).max(32),
  /** OIDC Back-Channel Logout: where Identity posts a logout token when the user signs out. */
  backchannel_logout_uri: z.url({ protocol: /^https$/ }),
  backchannel_logout_session_required: z.boolean(),
  token_endpoint_auth_method: z.enum([
    'client_secret_basic',
    'client_secret_post',
    'private_key_jwt',
    'tls_client_auth',
    'none',
  ]),
  /** For `tls_client_auth`: the certificate's subject DN (e.g. `CN=batch.example`) or one of its DNS names. */
  tls_client_auth_subject_dn: z.string().min(3).max(1024),
  tls_client_auth_san_dns: z.string().min(1).max(253),
  /** Lifetime of this client's access tokens for resource servers (default `tokens.access_token_ttl_seconds`). */
  access_token_ttl: z.number().int().min(5).max(86_400),
  scope: z.string().max(2048),
  /** DPoP-bound tokens only (RFC 9449): token requests without a proof are refused. Default true for public clients. */
  dpop_bound_access_tokens: z.boolean(),
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(16) }),
};

const metadataSchema = z.strictObject(metadataFields).partial();

export const clientCreateSchema = metadataSchema.extend({
  client_id: z
    .string()
    .regex(/^[A-Za-z0-9._-]{3,64}$/, 'use 3-64 letters, digits, ".", "_" or "-"')
    .optional(),
  grant_types: metadataFields.grant_types,
  token_endpoint_auth_method: metadataFields.token_endpoint_auth_method.default('client_secret_basic'),
  trusted: z.boolean().optional(),
  tenant_id: z.uuid().optional(),
});

export const clientUpdateSchema = metadataSchema
  .extend({ trusted: z.boolean().optional(), tenant_id: z.uuid().nullable().optional() })
  .refine((body) => Object.keys(body).length > 0, 'name at least one field to change');

export function clientsRouter(db: Database, validate: ClientMetadataValidator): Router {
  const router = Router();
  router.post('/admin/v1/clients', async (req, res) => {
    const { client_id: clientId, trusted, tenant_id: tenantId, ...metadata } = parseBody(clientCreateSchema, req);
    const created = await createClient(db, validate, { clientId, trusted, tenantId, metadata });
    res
      .status(201)
      .location(`/admin/v1/clients/${encodeURIComponent(created.client.clientId)}`)
      .set('Cache-Control', 'no-store')
      .json(clientWithSecretJson(created));
  });
  router.get('/admin/v1/clients', async (req, res) => {
    res.json(listJson(await listClients(db, pageQuery(req)), clientJson));
  });
  router.get('/admin/v1/clients/:id', async (req, res) => {
    res.json(clientJson(await getClient(db, req.params.id)));
  });
  router.patch('/admin/v1/clients/:id', async (req, res) => {
    const { trusted, tenant_id: tenantId, ...metadata } = parseBody(clientUpdateSchema, req);
    const updated = await updateClient(db, validate, req.params.id, {
      trusted,
      tenantId,
      ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
    });
    res.set('Cache-Control', 'no-store').json(clientWithSecretJson(updated));
  });
  router.post('/admin/v1/clients/:id/secret', async (req, res) => {
    res.set('Cache-Control', 'no-store').json(clientWithSecretJson(await rotateClientSecret(db, req.params.id)));
  });
  router.delete('/admin/v1/clients/:id', async (req, res) => {
    await deleteClient(db, req.params.id);
    res.status(204).end();
  });
  return router;
}
