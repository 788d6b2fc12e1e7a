/** Material keys of an elastic key: generate (rotate) or import (wrapped, or a public key), read, list, revoke. */
import { parseBody } from '@cryptoutil/infra';
import { tenantContext } from './tenant-selection.js';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { MATERIAL_KEY_SORT_FIELDS, type MaterialKeyFilter } from '../data/material-key-repository.js';
import {
  generateMaterialKey,
  getMaterialKey,
  importMaterialKey,
  listMaterialKeys,
  revokeMaterialKey,
  type MaterialKeyImport,
} from '../domain/material-key.js';
import { materialKeyJson, pageJson } from './presenters.js';
import { hasBody, pageRequest, queryDate, queryUuids, uuidParam } from './validation.js';

/** A compact JWE of a key: far larger than any JWK the KMS takes, far smaller than the body limit. */
const MAX_WRAPPED_KEY_LENGTH = 64 * 1024;

const importSchema = z
  .strictObject({
    jwe: z.string().min(1).max(MAX_WRAPPED_KEY_LENGTH).optional(),
    jwk: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((body) => (body.jwe === undefined) !== (body.jwk === undefined), {
    message: 'send exactly one of jwe (a key wrapped to the import wrapping key) or jwk (a public key)',
  });

function importInput(req: Request): MaterialKeyImport {
  const body = parseBody(importSchema, req);
  return body.jwe === undefined ? { jwk: body.jwk ?? {} } : { jwe: body.jwe };
}

function materialFilter(req: Request): MaterialKeyFilter {
  const filter: MaterialKeyFilter = { materialKeyIds: queryUuids(req, 'material_key_id') };
  const dates = {
    minGenerateDate: queryDate(req, 'min_generate_date'),
    maxGenerateDate: queryDate(req, 'max_generate_date'),
    minImportDate: queryDate(req, 'min_import_date'),
    maxImportDate: queryDate(req, 'max_import_date'),
  };
  for (const [field, value] of Object.entries(dates)) {
    if (value !== undefined) filter[field as keyof typeof dates] = value;
  }
  return filter;
}

export function materialKeysRouter(): Router {
  const router = Router();

  router.post('/elastickey/:elasticKeyId/materialkey', async (req, res) => {
    const ctx = tenantContext(res);
    const elasticKeyId = uuidParam(req, 'elasticKeyId');
    const material = hasBody(req)
      ? await importMaterialKey(ctx, elasticKeyId, importInput(req))
      : await generateMaterialKey(ctx, elasticKeyId);
    res.status(201).json(materialKeyJson(material));
  });

  router.get('/elastickey/:elasticKeyId/materialkey/:materialKeyId', async (req, res) => {
    const ctx = tenantContext(res);
    const material = await getMaterialKey(ctx, uuidParam(req, 'elasticKeyId'), uuidParam(req, 'materialKeyId'));
    res.json(materialKeyJson(material));
  });

  router.get('/elastickey/:elasticKeyId/materialkeys', async (req, res) => {
    const ctx = tenantContext(res);
    const filter = { ...materialFilter(req), elasticKeyId: uuidParam(req, 'elasticKeyId') };
    res.json(
      pageJson(await listMaterialKeys(ctx, filter, pageRequest(req, MATERIAL_KEY_SORT_FIELDS)), materialKeyJson),
    );
  });

  router.get('/materialkeys', async (req, res) => {
    const ctx = tenantContext(res);
    res.json(
      pageJson(
        await listMaterialKeys(ctx, materialFilter(req), pageRequest(req, MATERIAL_KEY_SORT_FIELDS)),
        materialKeyJson,
      ),
    );
  });

  router.post('/elastickey/:elasticKeyId/materialkey/:materialKeyId/revoke', async (req, res) => {
    const ctx = tenantContext(res);
    const material = await revokeMaterialKey(ctx, uuidParam(req, 'elasticKeyId'), uuidParam(req, 'materialKeyId'));
    res.json(materialKeyJson(material));
  });

  return router;
}
