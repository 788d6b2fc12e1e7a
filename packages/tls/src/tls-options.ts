/**
 * TLS 1.3-only options for servers and clients that trust the deployment's root CA and nothing else.
 * Full verification always: there is deliberately no option to relax it.
 */
import type { SecureContextOptions, TlsOptions } from 'node:tls';

export class InsecureTlsOptionsError extends Error {
  readonly code = 'insecure_tls_options';
  constructor(message: string) {
    super(message);
    this.name = 'InsecureTlsOptionsError';
  }
}

export interface ServerTlsInput {
  /** Leaf-first PEM chain. */
  chain: string;
  key: string;
  rootCa: string;
  /** Require a client certificate from the same CA (mTLS). */
  requireClientCert?: boolean;
  /**
   * Ask for a client certificate but also accept connections without a valid one (e.g. callers with a
   * bearer token). The application must then check `socket.authorized` before trusting a certificate.
   */
  requestClientCert?: boolean;
}

export interface ClientTlsInput {
  rootCa: string;
  /** Client certificate chain and key, for mTLS. */
  cert?: string;
  key?: string;
  servername?: string;
}

const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

export function serverTlsOptions(input: ServerTlsInput): TlsOptions {
  return {
    ...TLS13,
    cert: input.chain,
    key: input.key,
    ca: [input.rootCa],
    requestCert: input.requireClientCert === true || input.requestClientCert === true,
    rejectUnauthorized: input.requireClientCert === true,
  };
}

export function clientTlsOptions(input: ClientTlsInput): SecureContextOptions & {
  servername?: string;
  rejectUnauthorized: true;
} {
  return {
    ...TLS13,
    ca: [input.rootCa],
    rejectUnauthorized: true,
    ...(input.cert ? { cert: input.cert } : {}),
    ...(input.key ? { key: input.key } : {}),
    ...(input.servername ? { servername: input.servername } : {}),
  };
}

/** Refuses options that would allow anything below TLS 1.3. */
export function validateTlsOptions(options: { minVersion?: string }): void {
  if (options.minVersion !== 'TLSv1.3') {
    throw new InsecureTlsOptionsError(`minVersion must be TLSv1.3, got ${options.minVersion ?? 'the default'}`);
  }
}
