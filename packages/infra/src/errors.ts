/**
 * Typed application errors. Each has an HTTP status and a stable machine `code`
 * (snake_case, part of the API contract); `problem.ts` turns them into RFC 9457 bodies.
 * The `detail` is shown to clients, so it must never carry secrets, SQL, stacks or key bytes.
 */
export interface AppErrorOptions {
  /** Human-readable explanation for the client (safe to show). */
  detail?: string;
  /** Extra members copied into the problem body (safe to show). */
  extensions?: Record<string, unknown>;
  /** Internal cause: logged, never sent to clients. */
  cause?: unknown;
  /** Extra response headers, e.g. `WWW-Authenticate` or `Retry-After`. */
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, title: string, options: AppErrorOptions = {}) {
    super(options.detail ?? title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = options.detail;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(detail: string, options: Omit<AppErrorOptions, 'detail'> & { code?: string } = {}) {
    super(400, options.code ?? 'invalid_request', 'Bad Request', { ...options, detail });
  }
}

export class UnauthorizedError extends AppError {
  constructor(code = 'authentication_required', options: AppErrorOptions = {}) {
    super(401, code, 'Unauthorized', options);
  }
}

export class ForbiddenError extends AppError {
  constructor(code = 'forbidden', options: AppErrorOptions = {}) {
    super(403, code, 'Forbidden', options);
  }
}

export class NotFoundError extends AppError {
  constructor(code = 'not_found', options: AppErrorOptions = {}) {
    super(404, code, 'Not Found', options);
  }
}

export class ConflictError extends AppError {
  constructor(code = 'conflict', options: AppErrorOptions = {}) {
    super(409, code, 'Conflict', options);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', 'Payload Too Large', {
      detail: `The request body exceeds the limit of ${limitBytes} bytes.`,
      extensions: { limit_bytes: limitBytes },
    });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(detail: string) {
    super(415, 'unsupported_media_type', 'Unsupported Media Type', { detail });
  }
}

export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(429, 'too_many_requests', 'Too Many Requests', {
      detail: 'Too many requests; retry later.',
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(code = 'service_unavailable', options: AppErrorOptions = {}) {
    super(503, code, 'Service Unavailable', options);
  }
}

export class RequestTimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super(503, 'request_timeout', 'Service Unavailable', {
      detail: `The request did not complete within ${timeoutMs} ms.`,
    });
  }
}

/** Anything unexpected: the client sees a generic message; the `cause` is only logged. */
export class InternalServerError extends AppError {
  constructor(options: Pick<AppErrorOptions, 'cause'> = {}) {
    super(500, 'internal_error', 'Internal Server Error', { detail: 'An unexpected error occurred.', ...options });
  }
}

/** A startup problem (bad config, missing secret): the process should exit non-zero with this message. */
export class ConfigError extends Error {
  /** Dotted path of the offending key, e.g. `database.pool_size`, when known. */
  readonly key: string | undefined;
  constructor(message: string, key?: string) {
    super(message);
    this.name = 'ConfigError';
    this.key = key;
  }
}
