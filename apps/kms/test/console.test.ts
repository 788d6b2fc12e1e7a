import { describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { notFoundHandler } from '@cryptoutil/infra';
import { CONSOLE_CSP, consoleRouter } from '../src/api/console.js';

// The modules come from `pnpm build` (apps/kms/console/dist), which `pnpm test` runs first.
const app = express().use(consoleRouter()).use(notFoundHandler());

describe('the web console route', () => {
  it('serves the page under a CSP that allows scripts and styles from this origin only', async () => {
    expect((await request(app).get('/ui')).headers.location).toBe('/ui/');
    const page = await request(app).get('/ui/').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe|https?:/);
    expect(page.text).toContain('<script type="module" src="./assets/main.js">');
    expect(page.text).not.toMatch(/<script>|<style>|style="/);
  });

  it('serves the compiled modules and the stylesheet, nothing else of the console folder', async () => {
    const module = await request(app).get('/ui/assets/main.js').expect(200);
    expect(module.headers['content-type']).toMatch(/javascript/);
    await request(app).get('/ui/assets/console.css').expect(200);
    for (const path of [
      '/ui/assets/main.d.ts',
      '/ui/assets/.tsbuildinfo',
      '/ui/assets/../src/main.ts',
      '/ui/index.html',
    ]) {
      expect([path, (await request(app).get(path)).status]).toEqual([path, 404]);
    }
  });
});
