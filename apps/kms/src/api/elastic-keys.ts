/** `/elastickey` and `/elastickeys`: create, read, update, list, enable/disable, delete/undelete, trim. */
import { tenantContext } from './tenant-selection.js';
import { Router } from 'express';
import { z } from 'zod';
import { ELASTIC_KEY_SORT_FIELDS } from '../data/elastic-key-repository.js';
import {
  createElasticKey,
  deleteElasticKey,
  disableElasticKey,
  enableElasticKey,
  getElasticKey,
  listElasticKeys,
  undeleteElasticKey,
  updateElasticKey,
} from '../domain/elastic-key.js';
import { isElasticKeyStatus } from '../domain/elastic-key-status.js';
import { trimElasticKey } from '../domain/trim.js';
import { ValidationError, parseBody } from '@cryptoutil/infra';
import { elasticKeyJson, pageJson } from './presenters.js';
import { pageRequest, queryBoolean, queryList, queryUuids, uuidParam } from './validation.js';

const name = z.string().trim().min(1).max(255);
const description = z.string().max(4096);

const createSchema = z.strictObject({
  name,
  description,
  algorithm: z.string().min(1).max(64),
  provider: z.string().default('Internal'),
  versioning_allowed: z.boolean().default(true),
  import_allowed: z.boolean().default(false),
});

const version = z.number().int().min(0).max(2_147_483_647);
const updateSchema = z.strictObject({
  name,
  description,
  min_decryption_version: version.min(1).optional(),
  min_encryption_version: version.optional(),
  rotation_period: z.string().max(64).nullable().optional(),
  max_encryptions: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
});

export function elasticKeysRouter(): Router {
  const router = Router();

  router.post('/elastickey', async (req, res) => {
    const ctx = tenantContext(res);
    const body = parseBody(createSchema, req);
    const key = await createElasticKey(ctx, {
      name: body.name,
      description: body.description,
      algorithm: body.algorithm,
      provider: body.provider,
      versioningAllowed: body.versioning_allowed,
      importAllowed: body.import_allowed,
    });
    res.status(201).location(`elastickey/${key.id}`).json(elasticKeyJson(key));
  });

  router.get('/elastickey/:elasticKeyId', async (req, res) => {
    const ctx = tenantContext(res);
    res.json(elasticKeyJson(await getElasticKey(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  router.put('/elastickey/:elasticKeyId', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const body = parseBody(updateSchema, req);
    const key = await updateElasticKey(ctx, id, {
      name: body.name,
      description: body.description,
      ...(body.min_decryption_version === undefined ? {} : { minDecryptionVersion: body.min_decryption_version }),
      ...(body.min_encryption_version === undefined ? {} : { minEncryptionVersion: body.min_encryption_version }),
      ...(body.rotation_period === undefined ? {} : { rotationPeriod: body.rotation_period }),
      ...(body.max_encryptions === undefined ? {} : { maxEncryptions: body.max_encryptions }),
    });
    res.json(elasticKeyJson(key));
  });

  router.post('/elastickey/:elasticKeyId/trim', async (req, res) => {
    const ctx = tenantContext(res);
    const { key, destroyedVersions } = await trimElasticKey(ctx, uuidParam(req, 'elasticKeyId'));
    res.json({ destroyed_versions: destroyedVersions, elastic_key: elasticKeyJson(key) });
  });

  router.post('/elastickey/:elasticKeyId/disable', async (req, res) => {
    const ctx = tenantContext(res);
    res.json(elasticKeyJson(await disableElasticKey(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  router.post('/elastickey/:elasticKeyId/enable', async (req, res) => {
    const ctx = tenantContext(res);
    res.json(elasticKeyJson(await enableElasticKey(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  router.delete('/elastickey/:elasticKeyId', async (req, res) => {
    const ctx = tenantContext(res);
    res.status(202).json(elasticKeyJson(await deleteElasticKey(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  router.post('/elastickey/:elasticKeyId/undelete', async (req, res) => {
    const ctx = tenantContext(res);
    res.json(elasticKeyJson(await undeleteElasticKey(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  router.get('/elastickeys', async (req, res) => {
    const ctx = tenantContext(res);
    const statuses = queryList(req, 'status');
    const unknown = statuses.find((status) => !isElasticKeyStatus(status));
    if (unknown !== undefined) {
      throw new ValidationError(`status "${unknown}" is not an elastic key status.`, {
        code: 'invalid_query',
        extensions: { field: 'status' },
      });
    }
    const versioningAllowed = queryBoolean(req, 'versioning_allowed');
    const importAllowed = queryBoolean(req, 'import_allowed');
    const page = await listElasticKeys(
      ctx,
      {
        elasticKeyIds: queryUuids(req, 'elastic_key_id'),
        names: queryList(req, 'name'),
        providers: queryList(req, 'provider'),
        algorithms: queryList(req, 'algorithm'),
        statuses,
        ...(versioningAllowed === undefined ? {} : { versioningAllowed }),
        ...(importAllowed === undefined ? {} : { importAllowed }),
      },
      pageRequest(req, ELASTIC_KEY_SORT_FIELDS),
    );
    res.json(pageJson(page, elasticKeyJson));
  });

  return router;
}
