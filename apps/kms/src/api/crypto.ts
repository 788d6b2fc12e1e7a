/** Crypto endpoints: encrypt/decrypt/rewrap (JWE), sign/verify (JWS), data keys, public JWKS. */
import { tenantContext } from './tenant-selection.js';
import { Router, type Request } from 'express';
import { ValidationError } from '@cryptoutil/infra';
import { decrypt } from '../domain/decrypt.js';
import { encrypt } from '../domain/encrypt.js';
import { generateDataKey } from '../domain/generate-data-key.js';
import { elasticKeyJwks } from '../domain/jwks.js';
import { rewrap } from '../domain/rewrap.js';
import { sign } from '../domain/sign.js';
import { verify } from '../domain/verify.js';
import { MAX_CONTEXT_LENGTH, bodyBytes, bodyCompact, queryString, uuidParam } from './validation.js';

function context(req: Request): string | undefined {
  const value = queryString(req, 'context');
  if (value !== undefined && value.length > MAX_CONTEXT_LENGTH) {
    throw new ValidationError(`context may have at most ${MAX_CONTEXT_LENGTH} characters.`, {
      code: 'invalid_query',
      extensions: { field: 'context' },
    });
  }
  return value;
}

/** `version=N` (Vault's `key_version`): encrypt or sign with that version instead of the latest. */
function requestedVersion(req: Request): { version?: number } {
  const value = queryString(req, 'version');
  if (value === undefined) return {};
  if (!/^[1-9]\d{0,9}$/.test(value) || Number(value) > 2_147_483_647) {
    throw new ValidationError('version must be a version number (1, 2, …).', {
      code: 'invalid_query',
      extensions: { field: 'version' },
    });
  }
  return { version: Number(value) };
}

export function cryptoRouter(): Router {
  const router = Router();

  router.post('/elastickey/:elasticKeyId/encrypt', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const given = context(req);
    const jwe = await encrypt(ctx, id, bodyBytes(req), {
      ...(given === undefined ? {} : { context: given }),
      ...requestedVersion(req),
    });
    res.type('text/plain').send(jwe);
  });

  router.post('/elastickey/:elasticKeyId/decrypt', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    res.type('application/octet-stream').send(Buffer.from(await decrypt(ctx, id, bodyCompact(req), context(req))));
  });

  router.post('/elastickey/:elasticKeyId/rewrap', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const given = context(req);
    const jwe = await rewrap(ctx, id, bodyCompact(req), given === undefined ? {} : { context: given });
    res.type('text/plain').send(jwe);
  });

  router.post('/elastickey/:elasticKeyId/sign', async (req, res) => {
    const ctx = tenantContext(res);
    res.type('text/plain').send(await sign(ctx, uuidParam(req, 'elasticKeyId'), bodyBytes(req), requestedVersion(req)));
  });

  router.post('/elastickey/:elasticKeyId/verify', async (req, res) => {
    const ctx = tenantContext(res);
    const result = await verify(ctx, uuidParam(req, 'elasticKeyId'), bodyCompact(req));
    res.json({ valid: result.valid, kid: result.kid, payload: Buffer.from(result.payload).toString('base64url') });
  });

  router.post('/elastickey/:elasticKeyId/generate', async (req, res) => {
    const ctx = tenantContext(res);
    const id = uuidParam(req, 'elasticKeyId');
    const alg = queryString(req, 'alg');
    if (alg === undefined) {
      throw new ValidationError('alg is required, e.g. ?alg=AES-256.', {
        code: 'invalid_query',
        extensions: { field: 'alg' },
      });
    }
    res.type('text/plain').send(await generateDataKey(ctx, id, alg));
  });

  router.get('/elastickey/:elasticKeyId/jwks', async (req, res) => {
    const ctx = tenantContext(res);
    res
      .type('application/jwk-set+json')
      .send(JSON.stringify(await elasticKeyJwks(ctx, uuidParam(req, 'elasticKeyId'))));
  });

  return router;
}
