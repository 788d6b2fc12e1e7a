/**
 * Vault Transit crypto on a named key, each item through the KMS's own use cases (encrypt, decrypt,
 * sign, verify), so access rules, audit, metrics and the JOSE outputs are the native API's:
 * `vault:v<N>:<JWE>` ciphertexts and `vault:v<N>:<detached JWS>` signatures.
 */
import { randomBytes } from 'node:crypto';
import { AppError, ValidationError } from '@cryptoutil/infra';
import { jweHeader, jwsHeader, type JwsAlgorithm } from '@cryptoutil/jose-authority';
import { encryptionKey, signingKey } from './crypto-key.js';
import { decrypt } from './decrypt.js';
import { encrypt } from './encrypt.js';
import type { KmsContext } from './kms-context.js';
import { sign } from './sign.js';
import { verify } from './verify.js';
import { transitKey } from './vault-transit-keys.js';
import {
  assertVersionAgrees,
  decodeBase64,
  decodeContext,
  materialKeyVersions,
  parseVaultValue,
  runBatch,
  vaultValue,
  type BatchResult,
} from './vault-transit.js';

interface Item {
  context?: string | undefined;
  reference?: string | undefined;
}
export interface EncryptItem extends Item {
  plaintext: string;
  key_version?: number | undefined;
}
export interface DecryptItem extends Item {
  ciphertext: string;
}
export interface RewrapItem extends DecryptItem {
  key_version?: number | undefined;
}
export interface SignItem extends Item {
  input: string;
}
export interface VerifyItem extends SignItem {
  signature: string;
}

export interface Sealed {
  ciphertext: string;
  key_version: number;
}

/** Version numbers of one elastic key, read again once if a `kid` is new (a rotation since the first read). */
function versionsOf(ctx: KmsContext, elasticKeyId: string) {
  let versions: Promise<Map<string, number>> = materialKeyVersions(ctx, elasticKeyId);
  return async (kid: unknown): Promise<Map<string, number>> => {
    const known = await versions;
    if (typeof kid !== 'string' || known.has(kid)) return known;
    versions = materialKeyVersions(ctx, elasticKeyId);
    return versions;
  };
}

/** `key_version` on encrypt: the domain encrypts with the latest version only, so only that one is accepted. */
function assertLatest(requested: number | undefined, latest: number): void {
  if (requested === undefined || requested === 0 || requested === latest) return;
  throw new ValidationError(
    `key_version ${requested} cannot be used: this KMS encrypts with the latest version only (v${latest})`,
    { code: 'key_version_unsupported' },
  );
}

async function sealed(versions: ReturnType<typeof versionsOf>, jwe: string, requested?: number): Promise<Sealed> {
  const kid = jweHeader(jwe).kid;
  const version = (await versions(kid)).get(String(kid)) ?? 0;
  assertLatest(requested, version);
  return { ciphertext: vaultValue(version, jwe), key_version: version };
}

export async function transitEncrypt(
  ctx: KmsContext,
  name: string,
  items: readonly EncryptItem[],
): Promise<BatchResult<Sealed>[]> {
  const { key } = await encryptionKey(ctx, (await transitKey(ctx, name)).id);
  const versions = versionsOf(ctx, key.id);
  return runBatch(items, async (item) => {
    const plaintext = decodeBase64(item.plaintext, 'plaintext');
    const context = decodeContext(item.context);
    const jwe = await encrypt(ctx, key.id, plaintext, context === undefined ? {} : { context });
    return sealed(versions, jwe, item.key_version);
  });
}

/** The JWE inside `vault:v<N>:`, after checking that its `kid` is version N of this key. */
async function openedValue(versions: ReturnType<typeof versionsOf>, ciphertext: string): Promise<string> {
  const { version, compact } = parseVaultValue(ciphertext, 'ciphertext');
  const kid = jweHeader(compact).kid;
  assertVersionAgrees(await versions(kid), kid, version);
  return compact;
}

export async function transitDecrypt(
  ctx: KmsContext,
  name: string,
  items: readonly DecryptItem[],
): Promise<BatchResult<{ plaintext: string }>[]> {
  const { key } = await encryptionKey(ctx, (await transitKey(ctx, name)).id);
  const versions = versionsOf(ctx, key.id);
  return runBatch(items, async (item) => {
    const jwe = await openedValue(versions, item.ciphertext);
    const plaintext = await decrypt(ctx, key.id, jwe, decodeContext(item.context));
    return { plaintext: Buffer.from(plaintext).toString('base64') };
  });
}

/**
 * A JWE of any version of the key, made again with the latest: decrypt then encrypt through the domain use
 * cases, the plaintext only in this function's memory. Replaced by the domain rewrap use case after merge
 * (branch kms-batch).
 */
async function rewrapJwe(ctx: KmsContext, elasticKeyId: string, jwe: string, context?: string): Promise<string> {
  const plaintext = await decrypt(ctx, elasticKeyId, jwe, context);
  return encrypt(ctx, elasticKeyId, plaintext, context === undefined ? {} : { context });
}

export async function transitRewrap(
  ctx: KmsContext,
  name: string,
  items: readonly RewrapItem[],
): Promise<BatchResult<Sealed>[]> {
  const { key } = await encryptionKey(ctx, (await transitKey(ctx, name)).id);
  const versions = versionsOf(ctx, key.id);
  return runBatch(items, async (item) => {
    const jwe = await openedValue(versions, item.ciphertext);
    return sealed(versions, await rewrapJwe(ctx, key.id, jwe, decodeContext(item.context)), item.key_version);
  });
}

const DATA_KEY_BITS = [128, 256, 512];

/**
 * `datakey/{plaintext|wrapped}/:name`: fresh random key bytes encrypted with the named key, so the
 * ciphertext decrypts (via `decrypt/:name`) to exactly those bytes, as in Vault.
 */
export async function transitDataKey(
  ctx: KmsContext,
  name: string,
  options: { bits?: number | undefined; context?: string | undefined; withPlaintext: boolean },
): Promise<Sealed & { plaintext?: string }> {
  const bits = options.bits ?? 256;
  if (!DATA_KEY_BITS.includes(bits)) {
    throw new ValidationError('invalid bits length: use 128, 256 or 512', { code: 'invalid_bits' });
  }
  const { key } = await encryptionKey(ctx, (await transitKey(ctx, name)).id);
  const context = decodeContext(options.context);
  const bytes = randomBytes(bits / 8);
  const jwe = await encrypt(ctx, key.id, bytes, { operation: 'generate', ...(context ? { context } : {}) });
  const result = await sealed(versionsOf(ctx, key.id), jwe);
  return options.withPlaintext ? { ...result, plaintext: bytes.toString('base64') } : result;
}

const HASHES: Partial<Record<JwsAlgorithm, string>> = {
  RS256: 'sha2-256',
  PS256: 'sha2-256',
  ES256: 'sha2-256',
  HS256: 'sha2-256',
  RS384: 'sha2-384',
  PS384: 'sha2-384',
  ES384: 'sha2-384',
  HS384: 'sha2-384',
  RS512: 'sha2-512',
  PS512: 'sha2-512',
  ES512: 'sha2-512',
  HS512: 'sha2-512',
};

export interface SignOptions {
  /** Path suffix or body field; must be the hash of the key's JWS algorithm (ignored for ed25519, as in Vault). */
  hash_algorithm?: string | undefined;
  prehashed?: boolean | undefined;
  key_version?: number | undefined;
}

function assertSignOptions(alg: JwsAlgorithm, options: SignOptions, item: Item): void {
  if (options.prehashed === true) {
    throw new ValidationError('prehashed is not supported: JWS signs the input itself', { code: 'invalid_request' });
  }
  if (item.context !== undefined && item.context !== '') {
    throw new ValidationError('context is not supported: signing keys are not derived', { code: 'invalid_request' });
  }
  const hash = HASHES[alg];
  const requested = options.hash_algorithm;
  if (hash && requested !== undefined && requested !== '' && requested !== hash) {
    throw new ValidationError(`hash_algorithm ${requested} does not fit this key: ${alg} uses ${hash}`, {
      code: 'invalid_hash_algorithm',
    });
  }
}

/** A JWS with its payload left out (RFC 7515 Appendix F): the input travels beside the signature, as in Vault. */
const detached = (jws: string): string => {
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
};

export async function transitSign(
  ctx: KmsContext,
  name: string,
  items: readonly SignItem[],
  options: SignOptions = {},
): Promise<BatchResult<{ signature: string; key_version: number }>[]> {
  const { key, algorithm } = await signingKey(ctx, (await transitKey(ctx, name, 'signing key')).id);
  const versions = versionsOf(ctx, key.id);
  return runBatch(items, async (item) => {
    assertSignOptions(algorithm.alg, options, item);
    const jws = await sign(ctx, key.id, decodeBase64(item.input, 'input'));
    const kid = jwsHeader(jws).kid;
    const version = (await versions(kid)).get(String(kid)) ?? 0;
    assertLatest(options.key_version, version);
    return { signature: vaultValue(version, detached(jws)), key_version: version };
  });
}

/**
 * `verify/:name`: the signature must be this key's, over exactly `input`. A signature that does not verify
 * is `valid: false` (as in Vault); a malformed one is an error.
 */
export async function transitVerify(
  ctx: KmsContext,
  name: string,
  items: readonly VerifyItem[],
  options: SignOptions = {},
): Promise<BatchResult<{ valid: boolean }>[]> {
  const { key, algorithm } = await signingKey(ctx, (await transitKey(ctx, name, 'signature verification key')).id);
  const versions = versionsOf(ctx, key.id);
  return runBatch(items, async (item) => {
    assertSignOptions(algorithm.alg, options, item);
    const payload = Buffer.from(decodeBase64(item.input, 'input')).toString('base64url');
    const { version, compact } = parseVaultValue(item.signature, 'signature');
    const [header = '', embedded = '', signature = '', ...rest] = compact.split('.');
    if (rest.length > 0) throw new ValidationError('invalid signature: not a JWS', { code: 'invalid_signature' });
    const kid = jwsHeader(compact).kid;
    assertVersionAgrees(await versions(kid), kid, version);
    if (embedded !== '' && embedded !== payload) return { valid: false };
    try {
      await verify(ctx, key.id, `${header}.${payload}.${signature}`);
      return { valid: true };
    } catch (error) {
      if (error instanceof AppError && error.code === 'signature_invalid') return { valid: false };
      throw error;
    }
  });
}
