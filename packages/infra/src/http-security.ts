/**
 * Secure defaults for every Express app of the product, in this order:
 * tracing span → request id → helmet → request timeout → rate limit → body parsers.
 *
 * Usage: `applySecurityDefaults(app, options)`, mount routers, then `app.use(notFoundHandler(), problemHandler({logger}))`.
 * - `X-Request-ID`: a sane incoming value (1–128 of `[A-Za-z0-9._-]`) is kept, otherwise a UUIDv7; echoed in the
 *   response and available to the logger and problem bodies through the request context.
 * - Bodies: JSON (`application/json`, `application/*+json`), text (`text/plain`) and raw (`application/octet-stream`)
 *   up to `bodyLimitBytes` (default 1 MiB), beyond which the answer is a 413 problem.
 * - A request without a response after `requestTimeoutMs` (default 30 s) gets a 503 `request_timeout` problem.
 * - An optional `RateLimiter` refuses with 429 and `Retry-After`.
 */
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import helmet, { type HelmetOptions } from 'helmet';
import { v7 as uuidv7 } from 'uuid';
import { AppError, RequestTimeoutError, TooManyRequestsError } from './errors.js';
import { PROBLEM_CONTENT_TYPE, problemBody, sendProblem } from './problem.js';
import { runWithRequestContext } from './request-context.js';
import { tracingMiddleware } from './tracing.js';

export interface RateLimitDecision {
  allowed: boolean;
  /** Seconds until a retry can succeed (sent as `Retry-After` when refused). */
  retryAfterSeconds: number;
}

/** Decides per key (client IP by default); implementations may be in memory or shared (database). */
export interface RateLimiter {
  consume(key: string): RateLimitDecision | Promise<RateLimitDecision>;
}

/** A limiter that decides at once (in process memory). */
export interface LocalRateLimiter extends RateLimiter {
  consume(key: string): RateLimitDecision;
}

export interface SecurityOptions {
  /** Maximum request body size in bytes (default 1 MiB). */
  bodyLimitBytes?: number;
  /** A request without a response after this many ms gets a 503 (default 30 000; 0 disables). */
  requestTimeoutMs?: number;
  rateLimiter?: RateLimiter;
  /** Key for the rate limiter (default: client IP, which honours the app's `trust proxy` setting). */
  rateLimitKey?: (req: Request) => string;
  /** Merged over the API defaults (`API_HELMET_OPTIONS`): override the CSP for pages such as a login form. */
  helmet?: HelmetOptions;
  /** Server span per request (default true; free when no telemetry is started). */
  tracing?: boolean;
  /** Extra media types parsed as raw bytes (in addition to `application/octet-stream`), e.g. `application/jose`. */
  rawTypes?: string[];
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const REQUEST_ID_HEADER = 'X-Request-ID';
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** An API serves JSON, never documents to render: nothing may load, frame or submit from its responses. */
export const API_HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  referrerPolicy: { policy: 'no-referrer' },
};

/** The incoming id if it is sane, else a fresh UUIDv7 (time-ordered, so ids sort like the logs). */
export function chooseRequestId(incoming: string | undefined): string {
  return incoming && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : uuidv7();
}

export function requestIdMiddleware(): RequestHandler {
  return (req, res, next) => {
    const requestId = chooseRequestId(req.get(REQUEST_ID_HEADER));
    res.setHeader(REQUEST_ID_HEADER, requestId);
    runWithRequestContext({ requestId, auditRecords: [] }, () => next());
  };
}

/** Answers 503 `request_timeout` if nothing was sent in time; a late answer from the handler is then dropped. */
export function requestTimeoutMiddleware(timeoutMs: number): RequestHandler {
  return (_req, res, next) => {
    const timer = setTimeout(() => {
      if (!res.headersSent) sendProblem(res, new RequestTimeoutError(timeoutMs));
    }, timeoutMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
    res.once('finish', () => clearTimeout(timer));
    next();
  };
}

/** Refuses with 429 once `keyOf`'s bucket is empty; a request without a key (undefined) passes. */
export function rateLimitMiddleware(
  limiter: RateLimiter,
  keyOf: (req: Request, res: Response) => string | undefined,
): RequestHandler {
  return (req, res, next) => {
    const key = keyOf(req, res);
    if (key === undefined) return next();
    const decide = (decision: RateLimitDecision) =>
      decision.allowed ? next() : next(new TooManyRequestsError(Math.max(1, Math.ceil(decision.retryAfterSeconds))));
    const decision = limiter.consume(key);
    if ('then' in decision) decision.then(decide, next);
    else decide(decision);
  };
}

export interface TokenBucketOptions {
  /** Burst size: requests allowed at once per key. */
  capacity: number;
  /** Sustained rate per key. */
  refillPerSecond: number;
  /** Bound on remembered keys; the least recently seen is forgotten first (default 100 000). */
  maxKeys?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A token bucket per key, in process memory (per instance; a shared limiter would use the database). */
export function tokenBucketLimiter(options: TokenBucketOptions): LocalRateLimiter {
  if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
    throw new RangeError('tokenBucketLimiter needs capacity ≥ 1 and refillPerSecond > 0');
  }
  const buckets = new Map<string, { tokens: number; updated: number }>();
  const maxKeys = options.maxKeys ?? 100_000;
  const now = options.now ?? Date.now;
  return {
    consume(key) {
      const time = now();
      const previous = buckets.get(key);
      const elapsedSeconds = previous ? Math.max(0, time - previous.updated) / 1000 : 0;
      const tokens = previous
        ? Math.min(options.capacity, previous.tokens + elapsedSeconds * options.refillPerSecond)
        : options.capacity;
      buckets.delete(key); // re-inserted below, so Map order is least recently seen first
      const allowed = tokens >= 1;
      buckets.set(key, { tokens: allowed ? tokens - 1 : tokens, updated: time });
      if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value as string);
      return { allowed, retryAfterSeconds: allowed ? 0 : Math.ceil((1 - tokens) / options.refillPerSecond) };
    },
  };
}

/**
 * JSON, text and raw parsers sharing one limit. They call `next` from stream events, yet the request's async
 * context (request id, active span) survives: raw-body binds its callback to it (a test guards this).
 */
export function bodyParsers(limit: number, rawTypes: readonly string[] = []): RequestHandler[] {
  return [
    express.json({ limit, type: ['application/json', 'application/*+json'] }),
    express.text({ limit, type: 'text/plain' }),
    express.raw({ limit, type: ['application/octet-stream', ...rawTypes] }),
    drainOtherBodies(limit),
  ];
}

/**
 * A body of any other content type is read and dropped (same limit, 413 beyond it), so a handler that
 * answers without it (401, 415) is not left with megabytes of unread upload stalling the connection.
 */
function drainOtherBodies(limit: number): RequestHandler {
  const read = express.raw({ limit, type: () => true });
  return (req, res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (req.readableEnded || !hasBody) return next(); // parsed above, or nothing to read
    read(req, res, (error?: unknown) => {
      req.body = undefined;
      next(error);
    });
  };
}

/** Problem codes for what Node's HTTP parser refuses before Express sees the request. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout'],
};

/**
 * Requests Node's parser refuses (oversized headers, a malformed request line or header) are answered with
 * a problem+json like every other error, instead of Node's bare text, and the connection is closed.
 */
export function answerClientErrors(server: Server): Server {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, code] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'malformed_request'];
    const title = STATUS_CODES[status] ?? 'Bad Request';
    const body = JSON.stringify(problemBody(new AppError(status, code, title)));
    socket.end(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\n` +
        `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

export function applySecurityDefaults(app: Express, options: SecurityOptions = {}): Express {
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  app.disable('x-powered-by');
  if (options.tracing ?? true) app.use(tracingMiddleware());
  app.use(requestIdMiddleware());
  // HelmetOptions is a union (legacy aliases exclude their new names), so a spread needs the cast.
  app.use(helmet({ ...API_HELMET_OPTIONS, ...options.helmet } as HelmetOptions));
  // API answers carry keys, ciphertexts and tokens: never cached unless a route says otherwise (static files).
  app.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  if (timeoutMs > 0) app.use(requestTimeoutMiddleware(timeoutMs));
  if (options.rateLimiter) {
    app.use(rateLimitMiddleware(options.rateLimiter, options.rateLimitKey ?? ((req) => req.ip ?? 'unknown')));
  }
  app.use(bodyParsers(options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, options.rawTypes));
  return app;
}
