/**
 * Demo steps and how they run: numbered, one after another, each a real call whose result is checked
 * (a step fails by throwing). With `--fail-fast` the steps after a failure are skipped, and a skipped
 * step is counted as skipped, never as passed.
 */
export interface Step {
  phase: 'kms' | 'identity' | 'integration';
  name: string;
  /** The step talks to the person itself (the device login): no spinner over its lines. */
  interactive?: boolean;
  /** Performs the operation and checks it; returns a short detail line for the report. */
  run: () => Promise<string | undefined>;
}

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface StepResult {
  index: number;
  phase: Step['phase'];
  name: string;
  outcome: Outcome;
  detail?: string;
  error?: { message: string; cause?: string };
  durationMs: number;
}

export interface RunSummary {
  success: boolean;
  total_steps: number;
  passed_steps: number;
  failed_steps: number;
  skipped_steps: number;
  errors: { phase: string; step: string; message: string; cause?: string }[];
  duration_ms: number;
}

export class StepFailure extends Error {}

/** Throws a `StepFailure` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new StepFailure(message);
}

export interface StepObserver {
  started(index: number, total: number, step: Step): void;
  finished(result: StepResult, total: number): void;
}

const causeOf = (error: unknown): string | undefined => {
  const cause = (error as { cause?: unknown }).cause;
  return cause === undefined ? undefined : cause instanceof Error ? cause.message : String(cause);
};

export async function runSteps(steps: readonly Step[], failFast: boolean, observer: StepObserver): Promise<RunSummary> {
  const started = Date.now();
  const results: StepResult[] = [];
  let failed = false;
  for (const [i, step] of steps.entries()) {
    const index = i + 1;
    if (failed && failFast) {
      const result: StepResult = { index, phase: step.phase, name: step.name, outcome: 'skipped', durationMs: 0 };
      results.push(result);
      observer.finished(result, steps.length);
      continue;
    }
    observer.started(index, steps.length, step);
    const at = Date.now();
    let result: StepResult;
    try {
      const detail = await step.run();
      result = {
        index,
        phase: step.phase,
        name: step.name,
        outcome: 'passed',
        ...(detail ? { detail } : {}),
        durationMs: Date.now() - at,
      };
    } catch (error) {
      failed = true;
      const cause = causeOf(error);
      result = {
        index,
        phase: step.phase,
        name: step.name,
        outcome: 'failed',
        error: { message: error instanceof Error ? error.message : String(error), ...(cause ? { cause } : {}) },
        durationMs: Date.now() - at,
      };
    }
    results.push(result);
    observer.finished(result, steps.length);
  }
  const count = (outcome: Outcome) => results.filter((result) => result.outcome === outcome).length;
  return {
    success: count('passed') === steps.length,
    total_steps: steps.length,
    passed_steps: count('passed'),
    failed_steps: count('failed'),
    skipped_steps: count('skipped'),
    errors: results.flatMap((result) =>
      result.error
        ? [
            {
              phase: result.phase,
              step: result.name,
              message: result.error.message,
              ...(result.error.cause ? { cause: result.error.cause } : {}),
            },
          ]
        : [],
    ),
    duration_ms: Date.now() - started,
  };
}
