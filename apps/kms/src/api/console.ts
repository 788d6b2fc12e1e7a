/**
 * The web console at `/ui/` (apps/kms/console): one HTML page, its stylesheet and its compiled ES
 * modules, served from this origin under a CSP that allows nothing else (no inline script or style, no
 * other host). The console talks to the browser API with the session cookie and CSRF token.
 */
import { fileURLToPath } from 'node:url';
import express, { Router, type RequestHandler } from 'express';
import { selfOnlyCsp, sharedStylesheet } from '@cryptoutil/infra';

export const CONSOLE_PATH = '/ui';

export const CONSOLE_CSP = selfOnlyCsp();

/** From `src/api` (tests) and `dist/api` (built) alike: the console folder is two levels up. */
const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

export function consoleRouter(): Router {
  const headers: RequestHandler = (_req, res, next) => {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('Cache-Control', 'no-cache');
    next();
  };
  const page: RequestHandler = (req, res) => {
    if (!req.originalUrl.split('?')[0]?.endsWith('/')) return res.redirect(301, `${CONSOLE_PATH}/`);
    res.sendFile('index.html', { root: CONSOLE_DIR });
  };
  // Only the stylesheet and the compiled modules: no sources, declarations or build info.
  const onlyAssets: RequestHandler = (req, _res, next) =>
    /^\/[a-z-]+\.js$/.test(req.path) || ['/console.css', '/cryptoutil.css'].includes(req.path)
      ? next()
      : next('router');
  const assets = Router()
    .use(onlyAssets)
    .get('/cryptoutil.css', sharedStylesheet())
    .get('/console.css', (_req, res) => res.sendFile('console.css', { root: CONSOLE_DIR }))
    .use(express.static(`${CONSOLE_DIR}dist`, { index: false, dotfiles: 'deny' }));
  return Router().use(CONSOLE_PATH, headers, Router().get('/', page).use('/assets', assets));
}
