/**
 * docs/CONFORMANCE.md and the mirror's tests must tell the same story: every module row names a test that
 * exists in the file the row's section points to, and every module test has its row.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';

const DOC = new URL('../../../../docs/CONFORMANCE.md', import.meta.url);
const TESTS = ['basic-op.test.ts', 'config-op.test.ts', 'rp-initiated-logout.test.ts'];

/** `module → suite class` pairs of the test titles in one file (`'OIDCC… (oidcc-…)` at the start of a title). */
async function testedModules(file: string): Promise<Map<string, string>> {
  const source = await readFile(new URL(file, import.meta.url), 'utf8');
  const found = new Map<string, string>();
  for (const match of source.matchAll(/'(OIDC\w+) \(([a-zA-Z0-9-]+)\)/g)) found.set(match[2]!, match[1]!);
  return found;
}

describe('docs/CONFORMANCE.md', () => {
  it('has one passing row per module test, with the same suite class, in the section of its file', async () => {
    const doc = await readFile(DOC, 'utf8');
    const sections = doc.split('\n## ').slice(1);
    expect(sections).toHaveLength(TESTS.length);
    for (const file of TESTS) {
      const section = sections.find((text) => text.includes(`conformance/${file}`));
      expect(section).toBeDefined();
      const rows = new Map(
        [...section!.matchAll(/^\| `([a-zA-Z0-9-]+)` +\| `(\w+)` +\| .+ \| (\w+) +\|$/gm)].map((row) => [
          row[1]!,
          { suiteClass: row[2]!, result: row[3]! },
        ]),
      );
      const tested = await testedModules(file);
      expect(tested.size).toBeGreaterThan(0);
      expect([...rows.keys()].sort()).toEqual([...tested.keys()].sort());
      for (const [module, suiteClass] of tested) expect(rows.get(module)).toEqual({ suiteClass, result: 'pass' });
    }
  });
});
