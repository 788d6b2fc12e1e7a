/**
 * `pnpm bench:compare [results.json] [--baseline file] [--tolerance 0.15]`: compares a `pnpm bench` run
 * (default: the newest file in `bench/results/`) with `bench/baseline.json` by ratio to the ceiling and
 * exits 1 if any row fell by more than the tolerance, 2 on bad input. Not part of `pnpm test`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_TOLERANCE, compareRuns, type BenchRun } from './bench/compare.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function newestResult(): Promise<string> {
  const dir = join(ROOT, 'bench', 'results');
  const files = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.json')).sort();
  const newest = files.at(-1);
  if (!newest) throw new Error(`no results in ${dir}: run pnpm bench first`);
  return join(dir, newest);
}

async function readRun(path: string): Promise<BenchRun> {
  const run = JSON.parse(await readFile(path, 'utf8')) as BenchRun;
  if (!Array.isArray(run.results)) throw new Error(`${path} is not a pnpm bench result`);
  return run;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      baseline: { type: 'string', default: join(ROOT, 'bench', 'baseline.json') },
      tolerance: { type: 'string', default: String(DEFAULT_TOLERANCE) },
    },
  });
  const tolerance = Number(values.tolerance);
  if (!(tolerance > 0 && tolerance < 1)) throw new Error('--tolerance must be between 0 and 1, e.g. 0.15');
  const currentPath = positionals[0] ?? (await newestResult());
  const baseline = await readRun(values.baseline);
  const current = await readRun(currentPath);
  const { rows, onlyInBaseline, onlyInCurrent } = compareRuns(baseline, current, tolerance);
  process.stdout.write(`baseline ${values.baseline} (${baseline.machine.cpus} cores, ${baseline.machine.node})\n`);
  process.stdout.write(`current  ${currentPath} (${current.machine.cpus} cores, ${current.machine.node})\n`);
  for (const row of rows) {
    const change = `${row.change >= 0 ? '+' : ''}${(row.change * 100).toFixed(1)}%`;
    process.stdout.write(
      `${row.scenario.padEnd(34)} ${row.mode.padEnd(14)} c=${String(row.connections).padEnd(3)} ` +
        `${row.baseline.toFixed(3)} -> ${row.current.toFixed(3)} ${change.padStart(7)}` +
        `${row.regression ? '  REGRESSION' : ''}\n`,
    );
  }
  for (const key of onlyInBaseline) process.stdout.write(`not measured now: ${key}\n`);
  for (const key of onlyInCurrent) process.stdout.write(`new (no baseline): ${key}\n`);
  const regressions = rows.filter((row) => row.regression).length;
  process.stdout.write(
    regressions > 0
      ? `${regressions} regression(s) beyond ${(tolerance * 100).toFixed(0)}%\n`
      : `no regression beyond ${(tolerance * 100).toFixed(0)}%\n`,
  );
  return regressions > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:compare: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
