/**
 * Vault Transit compatibility (kms.md "Beyond the anchors"): how Vault's transit vocabulary maps onto
 * elastic keys, so a Vault client works unchanged while everything the KMS returns stays standard JOSE.
 *
 * - Key types ↔ JOSE algorithms (`VAULT_KEY_TYPES`); RSA types are signing keys (PSS, the hash following
 *   the modulus as everywhere in the KMS). Types JOSE has no algorithm for are refused.
 * - Values are `vault:v<version>:<JWE or JWS compact>`; the version is the material key's.
 * - Base64 fields are decoded strictly (standard alphabet, padded), as Vault does.
 * - `batch_input`: each item runs on its own; a refused item carries `error` and never fails the others.
 */
import { AppError, ValidationError } from '@cryptoutil/infra';
import { keySpecFor, parseKeyAlgorithm } from '@cryptoutil/jose-authority';

/** The Vault key types the KMS creates, and the JOSE algorithm of the elastic key each becomes. */
export const VAULT_KEY_TYPES = {
  'aes128-gcm96': 'A128GCM/dir',
  'aes256-gcm96': 'A256GCM/dir',
  'ecdsa-p256': 'ES256',
  'ecdsa-p384': 'ES384',
  'ecdsa-p521': 'ES512',
  ed25519: 'EdDSA',
  'rsa-2048': 'PS256',
  'rsa-3072': 'PS384',
  'rsa-4096': 'PS512',
} as const;

export type VaultKeyType = keyof typeof VAULT_KEY_TYPES;

/** Vault types that exist but have no JOSE counterpart here, with the reason given to the caller. */
const UNSUPPORTED_TYPES: Record<string, string> = {
  'chacha20-poly1305': 'JOSE defines no ChaCha20-Poly1305 content encryption; use aes256-gcm96',
  'xchacha20-poly1305': 'JOSE defines no XChaCha20-Poly1305 content encryption; use aes256-gcm96',
  hmac: 'the hmac endpoints are not served; create an HS256 elastic key with the native API',
  'aes128-cmac': 'CMAC is not a JOSE algorithm',
  'aes256-cmac': 'CMAC is not a JOSE algorithm',
  managed_key: 'managed keys are not supported',
};

/** The JOSE algorithm for a Vault key type; unknown and unsupported types are refused as Vault words it. */
export function joseAlgorithmFor(type: string): string {
  if (Object.hasOwn(VAULT_KEY_TYPES, type)) return VAULT_KEY_TYPES[type as VaultKeyType];
  const reason = Object.hasOwn(UNSUPPORTED_TYPES, type) ? UNSUPPORTED_TYPES[type] : undefined;
  throw new ValidationError(reason ? `key type ${type} is not supported: ${reason}` : `unknown key type ${type}`, {
    code: 'vault_key_type_unsupported',
  });
}

/** The Vault type shown for an elastic key: the mapped one, `rsa-<bits>` / `hmac` by shape, else the JOSE name. */
export function vaultKeyType(algorithm: string): string {
  const exact = Object.entries(VAULT_KEY_TYPES).find(([, alg]) => alg === algorithm);
  if (exact) return exact[0];
  const parsed = parseKeyAlgorithm(algorithm);
  const spec = keySpecFor(parsed);
  if (spec.kty === 'RSA') return `rsa-${spec.modulusLength}`;
  if (parsed.use === 'sig' && spec.kty === 'oct') return 'hmac';
  return algorithm;
}

const VAULT_VALUE = /^vault:v([1-9][0-9]{0,8}):([A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4})$/;

/** `vault:v<version>:<compact>`: Vault's ciphertext and signature format around a JWE or JWS. */
export function vaultValue(version: number, compact: string): string {
  return `vault:v${version}:${compact}`;
}

export function parseVaultValue(
  value: string,
  field: 'ciphertext' | 'signature',
): { version: number; compact: string } {
  const match = VAULT_VALUE.exec(value.trim());
  if (!match?.[1] || match[2] === undefined) {
    throw new ValidationError(`invalid ${field}: expected vault:v<version>:<JOSE compact serialization>`, {
      code: `invalid_${field}`,
    });
  }
  return { version: Number(match[1]), compact: match[2] };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (Vault decodes with Go's StdEncoding): anything else is refused, never guessed. */
export function decodeBase64(value: string, field: string): Uint8Array {
  if (!BASE64.test(value)) {
    throw new ValidationError(`${field} must be base64 (standard alphabet, padded)`, { code: 'invalid_base64' });
  }
  return Buffer.from(value, 'base64');
}

export const MAX_CONTEXT_LENGTH = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Vault's `context` (base64) as the KMS's context string, bound into the JWE header: the decoded UTF-8
 * text, so `context: base64("tenant-42")` here and `?context=tenant-42` on the native API are the same.
 */
export function decodeContext(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  let text: string;
  try {
    text = utf8.decode(decodeBase64(value, 'context'));
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new ValidationError('context must be base64 of UTF-8 text', { code: 'invalid_context' });
  }
  if (text.length > MAX_CONTEXT_LENGTH) {
    throw new ValidationError(`context may have at most ${MAX_CONTEXT_LENGTH} characters`, { code: 'invalid_context' });
  }
  return text;
}

/** The material key behind `vault:v<N>:`: the compact's `kid` must be that version of this key. */
export function assertVersionAgrees(actual: number | undefined, claimed: number): void {
  if (actual !== claimed) {
    throw new ValidationError(
      actual === undefined
        ? 'invalid key version: the value was not made with this key'
        : `invalid key version: the value says v${claimed} but was made with v${actual}`,
      { code: 'invalid_key_version' },
    );
  }
}

/** One `batch_results` entry: the item's result, or its `error`; `reference` is echoed as Vault does. */
export type BatchResult<R> = (R | { error: string }) & { reference?: string };

/**
 * Runs each item on its own, in order: a client error (4xx) becomes that item's `error`, anything else
 * (a 5xx: database, barrier) fails the whole request, as in Vault.
 */
export async function runBatch<I extends { reference?: string | undefined }, R extends object>(
  items: readonly I[],
  run: (item: I) => Promise<R>,
): Promise<BatchResult<R>[]> {
  const results: BatchResult<R>[] = [];
  for (const item of items) {
    const reference = item.reference === undefined ? {} : { reference: item.reference };
    try {
      results.push({ ...(await run(item)), ...reference });
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      results.push({ error: error.detail ?? error.title, ...reference });
    }
  }
  return results;
}

/**
 * Vault's status for a batch: 200 when every item succeeded, else 400, unless some succeeded and the
 * caller chose `partial_failure_response_code` for that case.
 */
export function batchStatus(results: readonly BatchResult<unknown>[], partialFailureCode?: number): number {
  const failed = results.filter((result) => 'error' in result).length;
  if (failed === 0) return 200;
  if (failed < results.length && partialFailureCode !== undefined) return partialFailureCode;
  return 400;
}
