/**
 * Envelope encryption: a fresh data key (JWK) is made and returned only as a JWE under the elastic key,
 * so the caller stores it next to its data and asks the KMS to decrypt it when needed.
 */
import { uuidv7 } from '@cryptoutil/infra';
import { dataKeySpec, generateJwk } from '@cryptoutil/jose-authority';
import { encrypt } from './encrypt.js';
import type { KmsContext } from './kms-context.js';

export async function generateDataKey(
  ctx: KmsContext,
  elasticKeyId: string,
  dataKeyAlgorithm: string,
): Promise<string> {
  const spec = dataKeySpec(dataKeyAlgorithm);
  const jwk = await generateJwk(spec, { kid: uuidv7() });
  return encrypt(ctx, elasticKeyId, new TextEncoder().encode(JSON.stringify(jwk)), {
    cty: 'jwk+json',
    operation: 'generate',
  });
}
