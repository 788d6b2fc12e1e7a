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
import { countCryptoOperation } from './crypto-metrics.js';
import { rewrapperFor, type Rewrapper } from './rewrap.js';
import { findMaterialKey } from '../data/material-key-repository.js';
import type { KmsContext } from './kms-context.js';
import { sign } from './sign.js';
import { verify } from './verify.js';
import { transitKey } from './vault-transit-keys.js';
import {
  assertVersionAgrees,
  decodeBase64,
  decodeContext,
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

/** The version number of each `kid` of one elastic key, each looked up once per request. */
function versionsOf(ctx: KmsContext, elasticKeyId: string) {
  const known = new Map<string, Promise<number | undefined>>();
  return (kid: unknown): Promise<number | undefined> => {
    if (typeof kid !== 'string') return Promise.resolve(undefined);
    let version = known.get(kid);
    if (!version) {
      version = findMaterialKey(ctx.db, ctx.tables, elasticKeyId, kid).then((record) => record?.version);
      known.set(kid, version);
    }
    return version;
  };
}

/** Vault's `key_version`: 0 or absent is the latest; another number picks that version (the domain's rules). */
const chosenVersion = (requested: number | undefined): { version?: number } =>
  requested === undefined || requested === 0 ? {} : { version: requested };

async function sealed(versions: ReturnType<typeof versionsOf>, jwe: string): Promise<Sealed> {
  const version = (await versions(jweHeader(jwe).kid)) ?? 0;
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
    const options = { ...chosenVersion(item.key_version), ...(context === undefined ? {} : { context }) };
    return sealed(versions, await encrypt(ctx, key.id, plaintext, options));
  });
}

/** The JWE inside `vault:v<N>:`, after checking that its `kid` is version N of this key. */
async function openedValue(versions: ReturnType<typeof versionsOf>, ciphertext: string): Promise<string> {
  const { version, compact } = parseVaultValue(ciphertext, 'ciphertext');
  const kid = jweHeader(compact).kid;
  assertVersionAgrees(await versions(kid), version);
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

export async function transitRewrap(
  ctx: KmsContext,
  name: string,
  items: readonly RewrapItem[],
): Promise<BatchResult<Sealed>[]> {
  const key = await encryptionKey(ctx, (await transitKey(ctx, name)).id);
  const versions = versionsOf(ctx, key.key.id);
  // One rewrapper per requested version (batch items may differ); each unwraps its versions once.
  const rewrappers = new Map<number, Promise<Rewrapper>>();
  const rewrapperOf = (requested: number | undefined) => {
    const chosen = chosenVersion(requested);
    let found = rewrappers.get(chosen.version ?? 0);
    if (!found) {
      found = rewrapperFor(ctx, key, chosen);
      rewrappers.set(chosen.version ?? 0, found);
    }
    return found;
  };
  return runBatch(items, async (item) => {
    const jwe = await openedValue(versions, item.ciphertext);
    const context = decodeContext(item.context);
    const rewrapped = await (await rewrapperOf(item.key_version)).rewrap(jwe, context === undefined ? {} : { context });
    countCryptoOperation('rewrap', key.key.algorithm);
    return sealed(versions, rewrapped);
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
    const jws = await sign(ctx, key.id, decodeBase64(item.input, 'input'), chosenVersion(options.key_version));
    const version = (await versions(jwsHeader(jws).kid)) ?? 0;
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
    assertVersionAgrees(await versions(kid), version);
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
