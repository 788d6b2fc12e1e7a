/**
 * TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, the parameters every authenticator
 * app supports). Secrets are stored encrypted under the at-rest key; a code is accepted within one
 * step of drift, once (the caller claims its step in the database).
 */
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { unwrapJwk, wrapJwk } from '@cryptoutil/jose-authority';
import type { AtRestKey } from './signing-keys.js';

const PERIOD_SECONDS = 30;
const ISSUER = 'cryptoutil Identity';

function totp(secretBase32: string, label = 'user'): TOTP {
  return new TOTP({
    issuer: ISSUER,
    label,
    algorithm: 'SHA1',
    digits: 6,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(secretBase32),
  });
}

/** A new 160-bit secret (RFC 4226 recommends at least 128), base32 as authenticator apps expect. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The time step a code belongs to when it matches (±1 step of clock drift), else undefined. */
export function matchTotp(secretBase32: string, code: string, now = Date.now()): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const generator = totp(secretBase32);
  const delta = generator.validate({ token: code, timestamp: now, window: 1 });
  return delta === null ? undefined : generator.counter({ timestamp: now }) + delta;
}

/** The code of the current step (for tests and the demo CLI, which play the authenticator app). */
export function currentTotp(secretBase32: string, now = Date.now()): string {
  return totp(secretBase32).generate({ timestamp: now });
}

/** What an authenticator app scans: the `otpauth://` URI, as a QR code in an SVG data URI. */
export async function enrolmentQr(secretBase32: string, username: string): Promise<{ uri: string; qrDataUri: string }> {
  const uri = totp(secretBase32, username).toString();
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { uri, qrDataUri: `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}` };
}

export async function sealTotpSecret(secretBase32: string, key: AtRestKey): Promise<string> {
  return wrapJwk({ kty: 'oct', k: Buffer.from(secretBase32, 'utf8').toString('base64url') }, key);
}

export async function openTotpSecret(jwe: string, key: AtRestKey): Promise<string> {
  const jwk = await unwrapJwk(jwe, key);
  return Buffer.from(String(jwk.k), 'base64url').toString('utf8');
}
