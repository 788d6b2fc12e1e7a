/**
 * Swagger UI on the browser API: "Try it out" on `POST /login` sets the session cookie (the browser keeps
 * it, HttpOnly) and answers with the CSRF token; these interceptors remember that token in the page and
 * send it as `X-CSRF-Token` on every state-changing browser API call, so the rest of "Try it out" works
 * as the console does. `GET /session` gives the token again after a reload; `POST /logout` forgets it.
 * The functions run in the browser (Swagger UI's init script holds their source): only their own bodies.
 */

/** Also called for the document fetch itself, which has no method. */
interface SwaggerRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
}

interface SwaggerResponse {
  url: string;
  ok: boolean;
  status: number;
  body?: unknown;
}

interface CsrfHolder {
  kmsCsrfToken?: string | undefined;
}

export function rememberCsrfToken(response: SwaggerResponse): SwaggerResponse {
  const holder = globalThis as unknown as CsrfHolder;
  const path = new URL(response.url, 'https://placeholder.invalid').pathname;
  if (/\/browser\/api\/v1\/(login|session)$/.test(path)) {
    const token = (response.body as { csrf_token?: unknown } | undefined)?.csrf_token;
    holder.kmsCsrfToken = response.ok && typeof token === 'string' ? token : undefined;
  } else if (/\/browser\/api\/v1\/logout$/.test(path) && response.ok) {
    holder.kmsCsrfToken = undefined;
  }
  return response;
}

export function sendCsrfToken(request: SwaggerRequest): SwaggerRequest {
  const token = (globalThis as unknown as CsrfHolder).kmsCsrfToken;
  const path = new URL(request.url, 'https://placeholder.invalid').pathname;
  const safe = ['GET', 'HEAD', 'OPTIONS'].includes((request.method ?? 'GET').toUpperCase());
  if (token !== undefined && !safe && path.includes('/browser/api/v1/')) {
    request.headers = { ...request.headers, 'X-CSRF-Token': token };
  }
  return request;
}

export const SWAGGER_SESSION_OPTIONS = {
  requestInterceptor: sendCsrfToken,
  responseInterceptor: rememberCsrfToken,
};
