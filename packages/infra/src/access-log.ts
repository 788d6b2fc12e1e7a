/**
 * One log line per answered request: method, path (no query: it may carry tokens), status, duration,
 * and whatever `fields` adds (e.g. the authenticated client). Never headers or bodies.
 */
import type { Request, RequestHandler } from 'express';
import type { Logger } from './logger.js';

export interface AccessLogOptions {
  logger: Logger;
  /** Requests not to log (e.g. static assets). */
  skip?: (req: Request) => boolean;
  /** Extra fields for the line; must not return secrets. */
  fields?: (req: Request) => Record<string, unknown>;
}

export function accessLog(options: AccessLogOptions): RequestHandler {
  return (req, res, next) => {
    if (options.skip?.(req)) return next();
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      options.logger.info('request', {
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status: res.statusCode,
        duration_ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        ...options.fields?.(req),
      });
    });
    next();
  };
}
