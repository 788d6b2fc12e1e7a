/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core, trusting exactly
 * the stack's two server keys (its CA is not in the system store), and an axe-core accessibility check.
 * Without Chromium the suites are skipped with a visible message.
 */
import { describe, expect } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
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
