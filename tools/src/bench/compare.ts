/**
 * `pnpm bench:compare`: a bench run against the committed baseline (`bench/baseline.json`). Rows are
 * matched by scenario, mode and connections and compared by their ratio to the ceiling measured in the
 * same run (absolute req/s change with the machine and its load; ratios travel). A row whose ratio fell
 * by more than the tolerance (15%) is a regression; rows only on one side are listed, not judged.
 */

export interface BenchRow {
  scenario: string;
  mode: 'keep-alive' | 'new-connection' | 'flow';
  connections: number;
  'req/s': number;
  /** For batch scenarios: items per second (req/s × items per request). */
  'items/s'?: number;
  'p50 ms': number;
  'p99 ms': number;
  errors: number;
  /** req/s divided by the ceiling's req/s in the same mode and at the same connections; null for ceilings. */
  ratio: number | null;
}

export interface BenchRun {
  machine: { node: string; cpus: number; cpu?: string };
  durationMs: number;
  results: BenchRow[];
}

export interface Comparison {
  scenario: string;
  mode: BenchRow['mode'];
  connections: number;
  baseline: number;
  current: number;
  /** current ÷ baseline − 1, e.g. −0.2 for 20% lower. */
  change: number;
  regression: boolean;
}

export const DEFAULT_TOLERANCE = 0.15;

const keyOf = (row: Pick<BenchRow, 'scenario' | 'mode' | 'connections'>) =>
  `${row.scenario}|${row.mode}|${row.connections}`;

export function compareRuns(
  baseline: BenchRun,
  current: BenchRun,
  tolerance = DEFAULT_TOLERANCE,
): { rows: Comparison[]; onlyInBaseline: string[]; onlyInCurrent: string[] } {
  const base = new Map(baseline.results.filter((row) => row.ratio !== null).map((row) => [keyOf(row), row]));
  const seen = new Set<string>();
  const rows: Comparison[] = [];
  const onlyInCurrent: string[] = [];
  for (const row of current.results) {
    if (row.ratio === null) continue;
    const key = keyOf(row);
    const before = base.get(key);
    if (!before || before.ratio === null) {
      onlyInCurrent.push(key);
      continue;
    }
    seen.add(key);
    const change = before.ratio > 0 ? row.ratio / before.ratio - 1 : 0;
    rows.push({
      scenario: row.scenario,
      mode: row.mode,
      connections: row.connections,
      baseline: before.ratio,
      current: row.ratio,
      change,
      regression: change < -tolerance || (row.errors > 0 && before.errors === 0),
    });
  }
  const onlyInBaseline = [...base.keys()].filter((key) => !seen.has(key));
  return { rows, onlyInBaseline, onlyInCurrent };
}
