/**
 * A database that cannot be reached (connection refused, reset or timed out, the server shutting down,
 * too many connections, SQLite busy beyond its timeout) is a `503 database_unavailable` with Retry-After,
 * not a 500: the request did nothing, and the same request can succeed once the database is back
 * (postgres.js reconnects on the next query; no restart needed).
 */
import { ServiceUnavailableError } from '../errors.js';

export class DatabaseUnavailableError extends ServiceUnavailableError {
  constructor(cause: unknown) {
    super('database_unavailable', {
      detail: 'The database cannot be reached; retry shortly.',
      headers: { 'Retry-After': '1' },
      cause,
    });
  }
}

/** Node socket errors and postgres.js connection states. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
]);

/** SQLSTATE classes and codes of a server that is going away or full (08: connection exception). */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code);
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (CONNECTION_CODES.has(code) || isUnavailableSqlState(code));
}

/** Runs `work`, turning an unreachable database into a DatabaseUnavailableError. */
export async function unlessUnavailable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof DatabaseUnavailableError) && isDatabaseUnavailable(error)) {
      throw new DatabaseUnavailableError(error);
    }
    throw error;
  }
}
