/**
 * Password and client-secret hashes: PBKDF2-HMAC-SHA256, 600,000 iterations, 32-byte salt and hash
 * (OWASP 2023; KMS-12, IDN-12), stored as `$pbkdf2-sha256$i=<iterations>$<b64 salt>$<b64 hash>` so the
 * parameters travel with the hash and can be raised later. Comparison is constant-time. Never bcrypt.
 */
import { createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * PBKDF2 runs on libuv's thread pool (`UV_THREADPOOL_SIZE`, 4 by default), which WebCrypto signing (every
 * token Identity issues) and file reads share, first come first served. At most this many PBKDF2 runs
 * are on the pool at once — one per core, and always two threads fewer than the pool — so a burst of
 * sign-ins never leaves token signing queued behind them; the others wait their turn in order. More at
 * once would not be faster: each run keeps a core busy. Raise `UV_THREADPOOL_SIZE` (e.g. cores + 2) to use
 * more than two cores for sign-ins.
 */
export function pbkdf2Concurrency(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): number {
  const pool = Number(env.UV_THREADPOOL_SIZE);
  const size = Number.isInteger(pool) && pool > 0 ? pool : 4;
  return Math.max(1, Math.min(cores, size - 2));
}

const slots = { free: pbkdf2Concurrency(), waiting: [] as (() => void)[] };

async function derive(...args: Parameters<typeof pbkdf2Async>): Promise<Buffer> {
  if (slots.free > 0) slots.free -= 1;
  else await new Promise<void>((resume) => slots.waiting.push(resume));
  try {
    return await pbkdf2Async(...args);
  } finally {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.free += 1;
  }
}

export const PBKDF2_DEFAULT_ITERATIONS = 600_000;
const SALT_BYTES = 32;
const HASH_BYTES = 32;
const FORMAT = /^\$pbkdf2-sha256\$i=(\d{1,9})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export class PasswordHashFormatError extends Error {
  readonly code = 'password_hash_invalid';
  constructor() {
    super('password hash must look like $pbkdf2-sha256$i=<iterations>$<base64 salt>$<base64 hash>');
    this.name = 'PasswordHashFormatError';
  }
}

export async function hashPassword(password: string, iterations = PBKDF2_DEFAULT_ITERATIONS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password.normalize('NFC'), salt, iterations, HASH_BYTES, 'sha256');
  return `$pbkdf2-sha256$i=${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export interface ParsedPasswordHash {
  iterations: number;
  salt: Buffer;
  hash: Buffer;
}

export function parsePasswordHash(encoded: string): ParsedPasswordHash {
  const match = FORMAT.exec(encoded);
  if (!match) throw new PasswordHashFormatError();
  const iterations = Number(match[1]);
  const salt = Buffer.from(match[2] ?? '', 'base64');
  const hash = Buffer.from(match[3] ?? '', 'base64');
  if (iterations < 1 || salt.length < 16 || hash.length < 16) throw new PasswordHashFormatError();
  return { iterations, salt, hash };
}

export function isPasswordHash(encoded: string): boolean {
  return FORMAT.test(encoded);
}

/** True when `password` matches; the comparison takes the same time however many bytes match. */
export async function verifyPassword(encoded: string, password: string): Promise<boolean> {
  const { iterations, salt, hash } = parsePasswordHash(encoded);
  const candidate = await derive(password.normalize('NFC'), salt, iterations, hash.length, 'sha256');
  return timingSafeEqual(candidate, hash);
}

let decoy: Promise<string> | undefined;

/**
 * For an account that does not exist: the same PBKDF2 work as checking a real one, so response time
 * does not tell whether a username exists. Always false.
 */
export async function verifyDecoyPassword(password: string): Promise<false> {
  decoy ??= hashPassword('decoy-password-for-unknown-accounts');
  await verifyPassword(await decoy, password);
  return false;
}

export interface VerifiedSecretCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
  /** The full check (default `verifyPassword`). */
  verify?: (encoded: string, secret: string) => Promise<boolean>;
}

/**
 * `verifyPassword` for machine secrets that are presented on every call (client secrets, API keys):
 * a match is remembered for `ttlMs` (default 5 min) under an HMAC, with a per-process random key, of
 * the stored hash and the presented secret, so repeated calls skip the 600,000 PBKDF2 iterations.
 * Failures are never cached (guessing still costs full price), and a rotated secret has a new hash,
 * so the old secret stops matching at once. Bounded: the oldest entry leaves first.
 */
export function verifiedSecretCache(options: VerifiedSecretCacheOptions = {}) {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const verify = options.verify ?? verifyPassword;
  const key = randomBytes(32);
  const verified = new Map<string, number>();
  return async (encoded: string, secret: string): Promise<boolean> => {
    const id = createHmac('sha256', key).update(encoded).update('\0').update(secret.normalize('NFC')).digest('base64');
    const expires = verified.get(id);
    if (expires !== undefined && expires > now()) return true;
    verified.delete(id);
    if (!(await verify(encoded, secret))) return false;
    if (verified.size >= maxEntries) verified.delete(verified.keys().next().value as string);
    verified.set(id, now() + ttlMs);
    return true;
  };
}
