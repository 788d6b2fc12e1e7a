/**
 * JWE `dir` with AES-GCM (RFC 7516 compact serialization, RFC 7518 §4.5 and §5.3) through node:crypto,
 * synchronously. For the small payloads a KMS encrypts most (fields, data keys, wrapped material) WebCrypto's
 * asynchronous job costs several times the cipher itself; this is the same construction, byte for byte the
 * format jose writes and reads (tests decrypt each one's output with the other). Anything unusual (another
 * key size, `zip`, `crit`) is left to jose.
 */
import { createCipheriv, createDecipheriv, randomFillSync, type CipherGCMTypes } from 'node:crypto';
import type { CompactJWEHeaderParameters, JWK } from 'jose';

const KEY_BYTES: Record<string, number> = { A128GCM: 16, A192GCM: 24, A256GCM: 32 };
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEGMENT = /^[A-Za-z0-9_-]*$/;

/**
 * Random IVs are taken from a pool refilled from the CSPRNG 1,024 at a time (as Node does for randomUUID):
 * one call per IV would cost more than the cipher. Each IV is used and encoded before the pool can refill.
 */
const ivPool = Buffer.allocUnsafe(IV_BYTES * 1024);
let ivOffset = ivPool.length;

function nextIv(): Buffer {
  if (ivOffset >= ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  ivOffset += IV_BYTES;
  return ivPool.subarray(ivOffset - IV_BYTES, ivOffset);
}

/** Raw key bytes per JWK object (JWKs are cached by their holders, so each is decoded once). */
const rawKeys = new WeakMap<JWK, Buffer>();

/** The raw AES key when `alg`/`enc` is `dir` with AES-GCM and `jwk` is an `oct` key of that size, else undefined. */
export function directGcmKey(jwk: JWK, alg: string, enc: string): Buffer | undefined {
  const size = KEY_BYTES[enc];
  if (alg !== 'dir' || size === undefined || jwk.kty !== 'oct' || typeof jwk.k !== 'string') return undefined;
  let key = rawKeys.get(jwk);
  if (!key) {
    key = Buffer.from(jwk.k, 'base64url');
    rawKeys.set(jwk, key);
  }
  return key.length === size ? key : undefined;
}

/** Whether the protected header asks for nothing this path leaves to jose. */
export function plainDirectHeader(header: CompactJWEHeaderParameters): boolean {
  return header.zip === undefined && header.crit === undefined;
}

const cipherName = (key: Buffer) => `aes-${key.length * 8}-gcm` as CipherGCMTypes;

export function encryptDirectGcm(plaintext: Uint8Array, key: Buffer, header: CompactJWEHeaderParameters): string {
  const encodedHeader = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const iv = nextIv();
  const cipher = createCipheriv(cipherName(key), key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(encodedHeader, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `${encodedHeader}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${tag.toString('base64url')}`;
}

/** The plaintext, or undefined if the JWE is malformed for `dir` or does not authenticate under `key`. */
export function decryptDirectGcm(jwe: string, key: Buffer): Uint8Array | undefined {
  const segments = jwe.split('.');
  const [header = '', encryptedKey, iv = '', ciphertext = '', tag = ''] = segments;
  if (segments.length !== 5 || encryptedKey !== '' || !segments.every((segment) => SEGMENT.test(segment))) {
    return undefined;
  }
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv(cipherName(key), key, ivBytes, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(header, 'ascii'));
    decipher.setAuthTag(tagBytes);
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
  } catch {
    return undefined;
  }
}
