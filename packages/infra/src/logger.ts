/**
 * JSON-lines logging (winston): one object per line, `{ts, level, msg, service, request_id?, trace_id?,
 * span_id?, ...meta}`. Request and trace ids are added from the request context and the active OTel span.
 *
 * Redaction happens here, once, for every line: values under sensitive keys at any depth (passwords, secrets,
 * tokens, authorization, cookies, private keys, unseal keys, JWK private members `d`, `k`, …), credentials
 * inside text (`Bearer …`, `Basic …`, passwords in URLs), compact JWS/JWE strings, and binary buffers.
 * Stacks are dropped: nothing internal beyond an error's name and message reaches a log.
 */
import { LOG_LINE, OtelLogTransport } from './otel-log-transport.js';
import { workerNumber } from './workers.js';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { Writable } from 'node:stream';
import winston from 'winston';
import { ConfigError } from './errors.js';
import { currentRequestContext } from './request-context.js';

export type Logger = winston.Logger;

/** Levels as winston knows them, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The level names of the original system's configuration (requirements 5.4), mapped onto winston's. */
const LEVEL_ALIASES: Record<string, LogLevel | 'off'> = {
  all: 'silly',
  trace: 'silly',
  config: 'verbose',
  notice: 'info',
  warning: 'warn',
  fatal: 'error',
  off: 'off',
};

export interface LoggerOptions {
  /** Added to every line as `service`. */
  service: string;
  /** A winston level or one of `ALL, TRACE, DEBUG, CONFIG, INFO, NOTICE, WARN, ERROR, FATAL, OFF` (default info). */
  level?: string;
  silent?: boolean;
  /** Where lines go (default stdout). */
  stream?: Writable;
}

export const REDACTED = '[REDACTED]';

/** Key names (lower-cased, `-`/`_` removed) whose values are always redacted. */
const SENSITIVE_KEY_PARTS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'authorization',
  'cookie',
  'privatekey',
  'unseal',
  'apikey',
  'credential',
  'keymaterial',
  'plaintext',
];
/** JWK private members (RFC 7518 §6): `d` of EC/OKP/RSA, RSA CRT values, `k` of oct keys. */
const JWK_PRIVATE_MEMBERS = new Set(['d', 'k', 'p', 'q', 'dp', 'dq', 'qi']);

export function isSensitiveKey(key: string): boolean {
  const normalized = key.toLowerCase().replace(/[-_]/g, '');
  return (
    JWK_PRIVATE_MEMBERS.has(key) ||
    normalized.endsWith('token') ||
    SENSITIVE_KEY_PARTS.some((part) => normalized.includes(part))
  );
}

const CREDENTIAL_IN_TEXT = /\b(Bearer|Basic|DPoP|Negotiate)\s+[A-Za-z0-9._~+/=-]+/gi;
/** Compact JWS/JWT (3 segments) and JWE (5 segments, the key segment possibly empty). */
const JOSE_IN_TEXT = /\beyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}/g;
/** `scheme://user:password@host` → password redacted. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]+@/gi;

export function redactText(text: string): string {
  return text
    .replace(CREDENTIAL_IN_TEXT, `$1 ${REDACTED}`)
    .replace(JOSE_IN_TEXT, REDACTED)
    .replace(URL_PASSWORD, `$1${REDACTED}@`);
}

const MAX_DEPTH = 10;

function describeError(error: Error, seen: WeakSet<object>, depth: number): Record<string, unknown> {
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: redactText(error.message),
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    ...(error.cause !== undefined ? { cause: redactValue(error.cause, seen, depth + 1) } : {}),
  };
}

function redactValue(value: unknown, seen: WeakSet<object>, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? undefined : value;
  if (depth > MAX_DEPTH) return '[Truncated]';
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  try {
    if (value instanceof Error) return describeError(value, seen, depth);
    if (value instanceof Date) return value.toISOString();
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
    if (Array.isArray(value)) return value.map((item) => redactValue(item, seen, depth + 1));
    if (value instanceof Map) return redactValue(Object.fromEntries(value), seen, depth + 1);
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      result[key] = isSensitiveKey(key) ? REDACTED : redactValue(item, seen, depth + 1);
    }
    return result;
  } finally {
    seen.delete(value);
  }
}

/** A JSON-safe copy of `value` with every secret replaced by `[REDACTED]`. */
export function redact(value: unknown): unknown {
  return redactValue(value, new WeakSet(), 0);
}

/** Maps a configured level name (case-insensitive) to winston's; unknown names are a `ConfigError`. */
export function resolveLogLevel(name: string): LogLevel | 'off' {
  const lower = name.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(lower)) return lower as LogLevel;
  const alias = LEVEL_ALIASES[lower];
  if (alias) return alias;
  throw new ConfigError(`unknown log level '${name}'`, 'log.level');
}

const MESSAGE = Symbol.for('message');
/** Keys the line builds itself; `stack` is dropped on purpose. */
const RESERVED = new Set(['ts', 'level', 'msg', 'message', 'service', 'stack']);

/** Builds the final JSON line: fixed fields first, then the redacted metadata. */
const jsonLine = winston.format((info) => {
  const context = currentRequestContext();
  const spanContext = trace.getActiveSpan()?.spanContext();
  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(info)) if (!RESERVED.has(key)) meta[key] = value;
  const message = typeof info.message === 'string' ? info.message : JSON.stringify(redact(info.message));
  const line = {
    ts: new Date().toISOString(),
    level: info.level,
    msg: redactText(message ?? ''),
    service: info.service,
    ...(context ? { request_id: context.requestId } : {}),
    ...(spanContext && isSpanContextValid(spanContext)
      ? { trace_id: spanContext.traceId, span_id: spanContext.spanId }
      : {}),
    ...(redact(meta) as Record<string, unknown>),
  };
  (info as unknown as Record<symbol, string>)[MESSAGE] = JSON.stringify(line);
  (info as unknown as Record<symbol, unknown>)[LOG_LINE] = line;
  return info;
});

export function createLogger(options: LoggerOptions): Logger {
  const level = resolveLogLevel(options.level ?? 'info');
  const worker = workerNumber();
  return winston.createLogger({
    level: level === 'off' ? 'error' : level,
    silent: (options.silent ?? false) || level === 'off',
    // A worker of a cluster (`workers` setting) says which one it is.
    defaultMeta: { service: options.service, ...(worker === undefined ? {} : { worker }) },
    format: jsonLine(),
    transports: [
      options.stream ? new winston.transports.Stream({ stream: options.stream }) : new winston.transports.Console(),
      // The same records as OpenTelemetry logs (no-op unless telemetry registered a logger provider).
      new OtelLogTransport(),
    ],
  });
}
