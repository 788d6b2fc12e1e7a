/**
 * RFC 9457 problem details: every error response is `application/problem+json`
 * `{type, title, status, detail, instance, code, request_id?, ...extensions}`.
 *
 * - `type` is `https://cryptoutil.dev/problems/<code>`: one URI per stable machine `code`, documenting it.
 * - `instance` is the request path (no query string, which may carry data).
 * - Typed `AppError`s keep their status, code, safe detail, extensions and headers (`Retry-After`, …).
 * - Errors from express/body-parser become 400 `invalid_json`, 413 `payload_too_large`, 415 `unsupported_media_type`, …
 * - Anything else is a 500 `internal_error` with a generic detail: stacks, SQL, messages and key material
 *   never reach the client. 5xx are logged with their cause; 4xx at debug level.
 */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import {
  AppError,
  InternalServerError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.js';
import type { Logger } from './logger.js';
import { currentRequestContext } from './request-context.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const PROBLEM_TYPE_BASE = 'https://cryptoutil.dev/problems/';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: string;
  request_id?: string;
  [extension: string]: unknown;
}

/** Codes for generic HTTP errors (http-errors objects thrown by express and its middleware). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request',
  401: 'authentication_required',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  411: 'length_required',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

interface HttpErrorLike {
  type?: unknown;
  status?: unknown;
  statusCode?: unknown;
  limit?: unknown;
}

/** Errors raised while reading the body (body-parser `type`s), mapped to typed errors. */
function fromBodyParser(error: HttpErrorLike): AppError | undefined {
  switch (error.type) {
    case 'entity.too.large':
      return new PayloadTooLargeError(typeof error.limit === 'number' ? error.limit : 0);
    case 'entity.parse.failed':
      return new ValidationError('The request body is not valid JSON.', { code: 'invalid_json' });
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError('The request body charset is not supported; use UTF-8.');
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError('The request body content encoding is not supported.');
    case 'request.aborted':
    case 'request.size.invalid':
      return new ValidationError('The request body could not be read completely.', { code: 'invalid_body' });
    default:
      return undefined;
  }
}

/** Any other client error carrying a 4xx `status` (e.g. an undecodable path parameter): status kept, message not. */
function fromHttpError(error: HttpErrorLike): AppError | undefined {
  const status = typeof error.status === 'number' ? error.status : error.statusCode;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  const title = STATUS_CODES[status] ?? 'Client Error';
  return new AppError(status, CODE_BY_STATUS[status] ?? 'invalid_request', title, { detail: `${title}.` });
}

/** The typed error for anything thrown: `AppError`s as they are, known framework errors mapped, else a 500. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (typeof error === 'object' && error !== null) {
    const mapped = fromBodyParser(error as HttpErrorLike) ?? fromHttpError(error as HttpErrorLike);
    if (mapped) return mapped;
  }
  return new InternalServerError({ cause: error });
}

export interface ProblemBodyOptions {
  instance?: string;
  requestId?: string;
}

/** The JSON body for `error`; the standard members cannot be overridden by extensions. */
export function problemBody(error: AppError, options: ProblemBodyOptions = {}): ProblemBody {
  return {
    ...error.extensions,
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: error.title,
    status: error.status,
    ...(error.detail ? { detail: error.detail } : {}),
    ...(options.instance ? { instance: options.instance } : {}),
    code: error.code,
    ...(options.requestId ? { request_id: options.requestId } : {}),
  };
}

function pathOf(req: Request | undefined): string | undefined {
  if (!req) return undefined;
  return (req.originalUrl || req.url).split('?')[0];
}

function requestIdOf(res: Response): string | undefined {
  const fromContext = currentRequestContext()?.requestId;
  if (fromContext) return fromContext;
  const header = res.getHeader('X-Request-ID');
  return typeof header === 'string' ? header : undefined;
}

/** Sends `error` (anything; non-`AppError`s become a generic 500) as problem+json with its headers. */
export function sendProblem(res: Response, error: unknown): void {
  const appError = toAppError(error);
  for (const [name, value] of Object.entries(appError.headers)) res.setHeader(name, value);
  const body = problemBody(appError, { instance: pathOf(res.req), requestId: requestIdOf(res) });
  res.status(appError.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

export interface ProblemHandlerOptions {
  logger?: Logger;
}

function logFailure(logger: Logger | undefined, req: Request, error: unknown, appError: AppError): void {
  if (!logger) return;
  const meta = { method: req.method, path: pathOf(req), status: appError.status, code: appError.code };
  if (appError.status >= 500) {
    // An unknown error is wrapped with itself as cause; a typed 5xx is logged through its cause if it has one.
    logger.error('request failed', { ...meta, error: appError.cause ?? appError });
  } else {
    logger.debug('request refused', meta);
  }
}

/** The last middleware: turns every error into a problem response. */
export function problemHandler(options: ProblemHandlerOptions = {}): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const appError = toAppError(error);
    if (res.headersSent) {
      // Too late for a problem body (e.g. the request timed out and a 503 already went out).
      options.logger?.warn('error after the response was sent', {
        method: req.method,
        path: pathOf(req),
        error: error instanceof Error ? { name: error.name } : String(error),
      });
      if (!res.writableEnded) res.destroy();
      return;
    }
    logFailure(options.logger, req, error, appError);
    // The stable code, for the audit log of the request.
    res.locals.problemCode = appError.code;
    sendProblem(res, appError);
  };
}

/** After all routers: any unmatched request is a 404 `not_found` problem. */
export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => {
    next(new NotFoundError('not_found', { detail: `No resource at ${req.method} ${pathOf(req) ?? '/'}.` }));
  };
}
