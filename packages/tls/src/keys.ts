/** ECDSA key pairs and their PEM encodings for the CA hierarchy. */
import { webcrypto } from 'node:crypto';

export type Curve = 'P-256' | 'P-384' | 'P-521';

const HASH_BY_CURVE: Record<Curve, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384', 'P-521': 'SHA-512' };

export function signingAlgorithm(curve: Curve): EcdsaParams {
  return { name: 'ECDSA', hash: HASH_BY_CURVE[curve] };
}

export function generateKeyPair(curve: Curve): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify']);
}

function pem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END ${label}-----\n`;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

export async function privateKeyFromPem(pemText: string, curve: Curve): Promise<CryptoKey> {
  const der = Buffer.from(pemText.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve }, true, ['sign']);
}

/** Random positive serial in [2^144, 2^152), inside the [2^64, 2^159) range required by §4.1. */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(19));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

/** notBefore back-dated by a random 1 to 120 minutes, so clock skew never makes a fresh certificate invalid. */
export function backdatedNotBefore(now = new Date()): Date {
  const minutes = 1 + ((webcrypto.getRandomValues(new Uint32Array(1))[0] ?? 0) % 120);
  return new Date(now.getTime() - minutes * 60_000);
}
