import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compareRuns, type BenchRow, type BenchRun } from '../src/bench/compare.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

function row(scenario: string, ratio: number | null, extra: Partial<BenchRow> = {}): BenchRow {
  return {
    scenario,
    mode: 'keep-alive',
    connections: 10,
    'req/s': 1000,
    'p50 ms': 1,
    'p99 ms': 2,
    errors: 0,
    ratio,
    ...extra,
  };
}

function run(rows: BenchRow[]): BenchRun {
  return { machine: { node: 'v20', cpus: 2 }, durationMs: 1000, results: rows };
}

describe('bench:compare', () => {
  it('flags a ratio more than 15% below the baseline, and new errors, and nothing else', () => {
    const baseline = run([
      row('bare-express', null),
      row('kms-encrypt', 0.2),
      row('kms-decrypt', 0.2),
      row('kms-sign', 0.2),
      row('kms-list', 0.2),
      row('gone', 0.1),
    ]);
    const current = run([
      row('bare-express', null, { 'req/s': 10 }), // ceilings are not judged
      row('kms-encrypt', 0.171), // −14.5%: within tolerance
      row('kms-decrypt', 0.169), // −15.5%: regression
      row('kms-sign', 0.3), // faster
      row('kms-list', 0.2, { errors: 3 }), // errors where there were none
      row('kms-encrypt', 0.1, { connections: 50 }), // not in the baseline
    ]);
    const { rows, onlyInBaseline, onlyInCurrent } = compareRuns(baseline, current);
    expect(rows.filter((r) => r.regression).map((r) => r.scenario)).toEqual(['kms-decrypt', 'kms-list']);
    expect(rows.find((r) => r.scenario === 'kms-sign')?.change).toBeCloseTo(0.5);
    expect(onlyInBaseline).toEqual(['gone|keep-alive|10']);
    expect(onlyInCurrent).toEqual(['kms-encrypt|keep-alive|50']);
  });

  it('exits 1 on a regression, 0 without one, 2 without a baseline (the CLI)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-compare-'));
    const write = (name: string, value: BenchRun) => {
      writeFileSync(join(dir, name), JSON.stringify(value));
      return join(dir, name);
    };
    const baseline = write('baseline.json', run([row('kms-encrypt', 0.2)]));
    const same = write('same.json', run([row('kms-encrypt', 0.19)]));
    const worse = write('worse.json', run([row('kms-encrypt', 0.1)]));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, 'tools/dist/bench-compare.js'), ...args], { encoding: 'utf8' });
    expect(cli('--baseline', baseline, same).status).toBe(0);
    const failed = cli('--baseline', baseline, worse);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/kms-encrypt.*-50\.0%.*REGRESSION/);
    expect(cli('--baseline', join(dir, 'missing.json'), same).status).toBe(2);
  });
});
