/**
 * JWE compact encryption and decryption. The optional `context` is bound into the protected header
 * (`ctx`), which is authenticated by every `enc`, so a ciphertext only decrypts with the same context.
 */
import { CompactEncrypt, compactDecrypt, type CompactJWEHeaderParameters, type JWK } from 'jose';
import type { JweEncryption, JweKeyManagement } from './algorithms.js';
import { InvalidJweError } from './errors.js';
import { compactHeader } from './compact.js';
import { importJoseKey } from './import-key.js';
import { decryptDirectGcm, directGcmKey, encryptDirectGcm, plainDirectHeader } from './jwe-dir-gcm.js';

export const CONTEXT_HEADER = 'ctx';

export interface JweOptions {
  alg: JweKeyManagement;
  enc: JweEncryption;
  kid: string;
  context?: string;
  /** Content type of the plaintext, e.g. `jwk+json` for wrapped keys. */
  cty?: string;
}

export async function encryptJwe(plaintext: Uint8Array, jwk: JWK, options: JweOptions): Promise<string> {
  const header: CompactJWEHeaderParameters = { alg: options.alg, enc: options.enc, kid: options.kid };
  if (options.context !== undefined) header[CONTEXT_HEADER] = options.context;
  if (options.cty !== undefined) header.cty = options.cty;
  const direct = directGcmKey(jwk, options.alg, options.enc);
  if (direct) return encryptDirectGcm(plaintext, direct, header);
  const key = await importJoseKey(jwk, options.alg, true, options.enc);
  return new CompactEncrypt(plaintext).setProtectedHeader(header).encrypt(key);
}

export interface DecryptedJwe {
  plaintext: Uint8Array;
  header: CompactJWEHeaderParameters;
}

/** Reads the protected header without decrypting; `invalid_jwe` if it is not a JWE compact string. */
export function jweHeader(jwe: string): CompactJWEHeaderParameters {
  return compactHeader(jwe, 5, (detail) => new InvalidJweError(detail));
}

/**
 * Decrypts with the key `jwk` after checking that the header asks for exactly the expected
 * algorithms (no downgrade by header) and carries the same context.
 */
export async function decryptJwe(
  jwe: string,
  jwk: JWK,
  expected: { alg: JweKeyManagement; enc: JweEncryption; context?: string },
): Promise<DecryptedJwe> {
  const header = jweHeader(jwe);
  if (header.alg !== expected.alg || header.enc !== expected.enc) {
    throw new InvalidJweError(`The JWE must use ${expected.enc}/${expected.alg}.`);
  }
  if (header[CONTEXT_HEADER] !== expected.context) {
    throw new InvalidJweError('The context does not match the one the data was encrypted with.');
  }
  const direct = directGcmKey(jwk, expected.alg, expected.enc);
  if (direct && plainDirectHeader(header)) {
    const plaintext = decryptDirectGcm(jwe.trim(), direct);
    if (!plaintext) throw new InvalidJweError('The JWE could not be decrypted.');
    return { plaintext, header };
  }
  const key = await importJoseKey(jwk, expected.alg, false, expected.enc);
  try {
    const result = await compactDecrypt(jwe.trim(), key, {
      keyManagementAlgorithms: [expected.alg],
      contentEncryptionAlgorithms: [expected.enc],
    });
    return { plaintext: result.plaintext, header: result.protectedHeader };
  } catch (cause) {
    throw new InvalidJweError('The JWE could not be decrypted.', { cause });
  }
}
