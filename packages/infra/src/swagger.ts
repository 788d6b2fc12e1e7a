/**
 * Serves the OpenAPI document at `/.well-known/openapi.json` and Swagger UI at `/ui/swagger/`.
 *
 * Every asset comes from the `swagger-ui-dist` package (no CDN). The page has no inline script:
 * swagger-ui-express's HTML loads `./swagger-ui-init.js`, which `serveFiles` answers with an init script
 * that fetches the document from `swaggerUrl`. So the UI routes get their own CSP (the API's `default-src
 * 'none'` would blank the page) that still allows scripts from this origin only:
 * - `style-src 'unsafe-inline'`: the page has two `<style>` blocks and Swagger UI (React) sets `style`
 *   attributes; styles cannot run code, and helmet's default CSP allows the same.
 * - `img-src data:`: the stylesheet's icons are data URIs.
 * - `connect-src 'self'`: the document and "Try it out" calls go to this origin only.
 * The spec validator badge (an image from an external host) is turned off (`validatorUrl: null`).
 */
import { Router, type RequestHandler } from 'express';
import swaggerUi, { type SwaggerUiOptions } from 'swagger-ui-express';

export const OPENAPI_PATH = '/.well-known/openapi.json';
export const SWAGGER_UI_PATH = '/ui/swagger';
export const SWAGGER_INIT_SCRIPT = 'swagger-ui-init.js';

/**
 * A CSP for pages that load everything from their own origin: scripts, styles, data-URI images, `fetch`.
 * `inlineStyles` allows `style` attributes and `<style>` blocks (Swagger UI needs them), never inline script.
 */
export function selfOnlyCsp(options: { inlineStyles?: boolean } = {}): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "script-src-attr 'none'",
    `style-src 'self'${options.inlineStyles ? " 'unsafe-inline'" : ''}`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

export const SWAGGER_UI_CSP = selfOnlyCsp({ inlineStyles: true });

/** Files of swagger-ui-dist that would show its demo (the Petstore document from an external host). */
const HIDDEN_DIST_FILES = new Set(['/index.html', '/swagger-initializer.js', '/package.json']);

const uiOptions = (title: string, extra: Record<string, unknown>): SwaggerUiOptions => ({
  swaggerUrl: OPENAPI_PATH,
  customSiteTitle: title,
  swaggerOptions: {
    validatorUrl: null,
    displayOperationId: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    ...extra,
  },
});

/**
 * The document at `/.well-known/openapi.json` and the UI at `/ui/swagger/`, titled `title`. The document
 * may be given as a function, read at the first request (e.g. once the listeners know their ports).
 * `swaggerOptions` go to Swagger UI; functions among them (request and response interceptors) are
 * written into the served init script as code, so they must not use anything outside their own body.
 */
export function swaggerRouter(
  document: object | (() => object),
  title = 'cryptoutil API',
  swaggerOptions: Record<string, unknown> = {},
): Router {
  const UI_OPTIONS = uiOptions(title, swaggerOptions);
  const router = Router();
  let body: string | undefined;

  router.get(OPENAPI_PATH, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    body ??= JSON.stringify(typeof document === 'function' ? document() : document);
    res.type('application/json').send(body);
  });

  const ui = Router();
  const uiHeaders: RequestHandler = (req, res, next) => {
    res.setHeader('Content-Security-Policy', SWAGGER_UI_CSP);
    if (HIDDEN_DIST_FILES.has(req.path)) {
      res.sendStatus(404);
      return;
    }
    next();
  };
  // Relative asset URLs in the page (`./swagger-ui.css`) need the trailing slash.
  const trailingSlash: RequestHandler = (req, res, next) => {
    const [path = '', query] = req.originalUrl.split('?', 2);
    if (req.path === '/' && !path.endsWith('/')) {
      res.redirect(301, `${req.baseUrl}/${query === undefined ? '' : `?${query}`}`);
      return;
    }
    next();
  };
  ui.use(uiHeaders);
  ui.get('/', trailingSlash, swaggerUi.setup(undefined, UI_OPTIONS));
  ui.use(swaggerUi.serveFiles(undefined, UI_OPTIONS));
  router.use(SWAGGER_UI_PATH, ui);
  return router;
}
