/**
 * The shared stylesheet (`packages/infra/assets/cryptoutil.css`) that gives the KMS console and Identity's
 * pages one look. Served from each product's own origin, so their CSPs need no inline style.
 */
import { fileURLToPath } from 'node:url';
import type { RequestHandler } from 'express';

/** From `src` (tests) and `dist` (built) alike: the assets folder is a sibling. */
export const SHARED_STYLESHEET_FILE = fileURLToPath(new URL('../assets/cryptoutil.css', import.meta.url));

export function sharedStylesheet(): RequestHandler {
  return (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('text/css').sendFile(SHARED_STYLESHEET_FILE);
  };
}
