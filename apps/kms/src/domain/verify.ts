/**
 * Verify: the JWS's `kid` picks the material key of this elastic key; a bad signature is `signature_invalid`.
 * `verifierFor` checks the elastic key once and unwraps each version once, for batches.
 */
import { countCryptoOperation } from './crypto-metrics.js';
import { InvalidJwsError, jwsHeader, verifyJws } from '@cryptoutil/jose-authority';
import { signingKey, type SigningKey } from './crypto-key.js';
import type { KmsContext } from './kms-context.js';
import { materialForKid, materialsByKid } from './material-key.js';

export interface Verification {
  valid: true;
  kid: string;
  payload: Uint8Array;
}

/** An elastic key ready to verify many JWSs, each with the version its `kid` names. */
export interface Verifier {
  verify(jws: string): Promise<Verification>;
}

export function verifierFor(ctx: KmsContext, { key, algorithm }: SigningKey): Verifier {
  const material = materialsByKid((kid) =>
    materialForKid(ctx, key, kid, (detail) => new InvalidJwsError(`JWS: ${detail}`), 'public'),
  );
  return {
    async verify(jws) {
      const { jwk, record } = await material(jwsHeader(jws).kid);
      const { payload } = await verifyJws(jws, jwk, algorithm.alg);
      return { valid: true, kid: record.id, payload };
    },
  };
}

export async function verify(ctx: KmsContext, elasticKeyId: string, jws: string): Promise<Verification> {
  const key = await signingKey(ctx, elasticKeyId);
  const verification = await verifierFor(ctx, key).verify(jws);
  countCryptoOperation('verify', key.key.algorithm);
  return verification;
}
