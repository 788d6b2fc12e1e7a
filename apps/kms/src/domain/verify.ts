/** Verify: the JWS's `kid` picks the material key of this elastic key; a bad signature is `signature_invalid`. */
import { countCryptoOperation } from './crypto-metrics.js';
import { InvalidJwsError, jwsHeader, verifyJws } from '@cryptoutil/jose-authority';
import { signingKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { materialForKid } from './material-key.js';

export interface Verification {
  valid: true;
  kid: string;
  payload: Uint8Array;
}

export async function verify(ctx: KmsContext, elasticKeyId: string, jws: string): Promise<Verification> {
  const { key, algorithm } = await signingKey(ctx, elasticKeyId);
  const material = await materialForKid(
    ctx,
    key,
    jwsHeader(jws).kid,
    (detail) => new InvalidJwsError(`JWS: ${detail}`),
    'public',
  );
  const { payload } = await verifyJws(jws, material.jwk, algorithm.alg);
  countCryptoOperation('verify', key.algorithm);
  return { valid: true, kid: material.record.id, payload };
}
