/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core, trusting exactly
 * the stack's two server keys (its CA is not in the system store), and an axe-core accessibility check.
 * Without Chromium the suites are skipped with a visible message.
 */
import { describe, expect } from '@jest/globals';
import express from 'express';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import type { Stack } from './stack.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots the docs use. */
export const IMAGES = resolve(import.meta.dirname ?? '.', '../../docs/images');

/** `describe`, or `describe.skip` with a message saying how to get Chromium. */
export function browserSuite(what: string): typeof describe | typeof describe.skip {
  if (existsSync(CHROMIUM)) return describe;
  console.warn(`${what} skipped: no Chromium at ${CHROMIUM} (apt-get install chromium).`);
  return describe.skip;
}

export async function launchChromium(stack: Stack): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${stack.leafPins.join(',')}`,
    ],
  });
}

/** A browser app's redirect endpoint on a loopback port: it records each redirect and answers 'signed in'. */
export interface AppCallback {
  url: string;
  received: string[];
  close(): Promise<void>;
}

export async function startAppCallback(): Promise<AppCallback> {
  const received: string[] = [];
  const server = http.createServer(
    express().get('/callback', (req, res) => {
      received.push(req.originalUrl);
      res.type('text/plain').send('signed in');
    }),
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

/** A public browser app (authorization code + PKCE) registered at Identity, with its authorization request. */
export interface BrowserApp {
  config: client.Configuration;
  authorizationUrl: URL;
  verifier: string;
  state: string;
}

export async function registerBrowserApp(
  stack: Stack,
  options: { name: string; callbackUrl: string; scope: string; dpop: boolean },
): Promise<BrowserApp> {
  const registered = await stack.fetch(`${stack.identity.adminUrl}/admin/v1/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: options.name,
      grant_types: ['authorization_code'],
      redirect_uris: [options.callbackUrl],
      token_endpoint_auth_method: 'none',
      // Public clients must use DPoP by default; an app that sends plain bearer tokens opts out.
      ...(options.dpop ? {} : { dpop_bound_access_tokens: false }),
      scope: options.scope,
    }),
  });
  expect(registered.status).toBe(201);
  const { client_id: clientId } = (await registered.json()) as { client_id: string };
  const config = await client.discovery(new URL(stack.identity.publicUrl), clientId, undefined, client.None(), {
    [client.customFetch]: stack.fetch as client.CustomFetch,
  });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: options.callbackUrl,
    scope: options.scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  return { config, authorizationUrl, verifier, state };
}

/**
 * demo-user signs in on the login page and allows the consent page in Chromium, until the app's callback
 * answers; `beforeEachPage` runs once each of the two pages is shown. Returns the callback page's text.
 */
export async function signInAndAllow(
  stack: Stack,
  app: BrowserApp,
  callbackUrl: string,
  beforeEachPage: () => void = () => undefined,
): Promise<string> {
  const browser = await launchChromium(stack);
  try {
    const page = await browser.newPage();
    await page.goto(app.authorizationUrl.toString());
    await page.getByLabel('Username').waitFor();
    beforeEachPage();
    await page.getByLabel('Username').fill('demo-user');
    await page.getByLabel('Password').fill('demo-user-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    beforeEachPage();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.toString().startsWith(callbackUrl));
    return (await page.textContent('body')) ?? '';
  } finally {
    await browser.close();
  }
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

let axeSource: Promise<string> | undefined;

/**
 * Serious and critical axe-core findings on the current page (axe must have checked something). The page
 * must come from a context made with `bypassCSP: true`, which only lets the test inject axe-core.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  axeSource ??= readFile(join(dirname(createRequire(import.meta.url).resolve('axe-core')), 'axe.min.js'), 'utf8');
  await page.evaluate(await axeSource);
  const results = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run: () => Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }
    ).axe;
    const { violations, passes } = await axe.run();
    return { violations, passed: passes.length };
  });
  expect(results.passed).toBeGreaterThan(3);
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map(
      (violation) =>
        `${violation.id}: ${violation.help} at ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`,
    );
}
