/** JWS compact signing and verification with an allowlist of exactly the key's algorithm. */
import { CompactSign, compactVerify, errors, type CompactJWSHeaderParameters, type JWK } from 'jose';
import type { JwsAlgorithm } from './algorithms.js';
import { InvalidJwsError, SignatureInvalidError } from './errors.js';
import { compactHeader } from './compact.js';
import { importJoseKey } from './import-key.js';

export async function signJws(
  payload: Uint8Array,
  jwk: JWK,
  options: { alg: JwsAlgorithm; kid: string },
): Promise<string> {
  const key = await importJoseKey(jwk, options.alg);
  return new CompactSign(payload).setProtectedHeader({ alg: options.alg, kid: options.kid }).sign(key);
}

/** Reads the protected header without verifying; `invalid_jws` if it is not a JWS compact string. */
export function jwsHeader(jws: string): CompactJWSHeaderParameters {
  return compactHeader(jws, 3, (detail) => new InvalidJwsError(detail));
}

export interface VerifiedJws {
  payload: Uint8Array;
  header: CompactJWSHeaderParameters;
}

export async function verifyJws(jws: string, jwk: JWK, alg: JwsAlgorithm): Promise<VerifiedJws> {
  const header = jwsHeader(jws);
  if (header.alg !== alg) throw new InvalidJwsError(`The JWS must use ${alg}.`);
  const key = await importJoseKey(jwk, alg, true);
  try {
    const result = await compactVerify(jws.trim(), key, { algorithms: [alg] });
    return { payload: result.payload, header: result.protectedHeader };
  } catch (cause) {
    if (cause instanceof errors.JWSSignatureVerificationFailed) throw new SignatureInvalidError();
    throw new InvalidJwsError('The JWS could not be verified.', { cause });
  }
}
