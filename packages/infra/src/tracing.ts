/**
 * Request and operation spans, written against `@opentelemetry/api` only: when `startTelemetry` registered
 * no provider, every call here hits the API's no-op implementation and costs next to nothing.
 */
import { type Attributes, type Span, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Request as ExpressRequest, RequestHandler } from 'express';
import { httpServerDuration } from './metrics.js';

export const TRACER_NAME = '@cryptoutil/infra';

/** The matched Express route template (`/elastickey/:id`), once routing has happened. */
function routeOf(req: ExpressRequest): string | undefined {
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}

/**
 * One SERVER span and one `http.server.request.duration` measurement per request, named `METHOD route` (`METHOD` alone when no route matched), continuing an
 * incoming W3C `traceparent`. Only the path is recorded, never the query string or headers carrying credentials.
 */
export function tracingMiddleware(): RequestHandler {
  return (req, res, next) => {
    const parent = propagation.extract(context.active(), req.headers);
    const span = trace.getTracer(TRACER_NAME).startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: req.method,
          [ATTR_URL_PATH]: req.path,
          [ATTR_URL_SCHEME]: req.protocol,
          ...(req.ip ? { [ATTR_CLIENT_ADDRESS]: req.ip } : {}),
          ...(req.get('user-agent') ? { [ATTR_USER_AGENT_ORIGINAL]: req.get('user-agent') } : {}),
        },
      },
      parent,
    );
    let ended = false;
    const started = performance.now();
    const end = (): void => {
      if (ended) return;
      ended = true;
      const route = routeOf(req);
      httpServerDuration().record((performance.now() - started) / 1000, {
        [ATTR_HTTP_REQUEST_METHOD]: req.method,
        [ATTR_HTTP_RESPONSE_STATUS_CODE]: res.statusCode,
        ...(route ? { [ATTR_HTTP_ROUTE]: route } : {}),
      });
      if (route) {
        span.updateName(`${req.method} ${route}`);
        span.setAttribute(ATTR_HTTP_ROUTE, route);
      }
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (!res.writableFinished) span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
      if (res.statusCode >= 500) {
        span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}

/**
 * Runs `fn` inside a child span of the active one. A thrown error marks the span as failed with the error's
 * type only (messages may carry internals) and is rethrown.
 */
export async function withSpan<T>(
  name: string,
  fn: (span: Span) => T | Promise<T>,
  attributes: Attributes = {},
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes, kind }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      const type = error instanceof Error ? error.name : typeof error;
      span.setAttribute(ATTR_ERROR_TYPE, type);
      span.setStatus({ code: SpanStatusCode.ERROR, message: type });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * Wraps a `fetch` so each outgoing call is a CLIENT span (`GET`, with the URL without its query) and carries
 * the W3C `traceparent` of that span: the called service (Identity's JWKS or introspection, say) continues
 * the same trace.
 */
export function tracedFetch(inner: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : (input as { url: string }).url);
    const method = (init?.method ?? 'GET').toUpperCase();
    return trace.getTracer(TRACER_NAME).startActiveSpan(
      method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          'url.full': `${url.origin}${url.pathname}`,
          'server.address': url.hostname,
        },
      },
      async (span) => {
        const headers = new Headers(init?.headers);
        propagation.inject(context.active(), headers, {
          set: (carrier, key, value) => carrier.set(key, value),
        });
        try {
          const response = await inner(input, { ...init, headers });
          span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.status);
          if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          return response;
        } catch (error) {
          span.setAttribute(ATTR_ERROR_TYPE, error instanceof Error ? error.name : 'error');
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }) as typeof fetch;
}
