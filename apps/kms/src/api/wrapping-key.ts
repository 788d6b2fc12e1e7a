/** The import wrapping key (BYOK): the public JWK a caller wraps a key to before importing it. */
import { Router } from 'express';
import { importWrappingKeyFor } from '../domain/material-key.js';
import { tenantContext } from './tenant-selection.js';
import { uuidParam } from './validation.js';

export function wrappingKeyRouter(): Router {
  const router = Router();

  router.get('/elastickey/:elasticKeyId/wrappingkey', async (req, res) => {
    const ctx = tenantContext(res);
    const jwk = await importWrappingKeyFor(ctx, uuidParam(req, 'elasticKeyId'));
    res.type('application/jwk+json').send(JSON.stringify(jwk));
  });

  return router;
}
