/**
 * The demo CLI's output: `human` prints `step i/N` lines with ✓/✗ (a spinner only on a terminal, colours
 * off under NO_COLOR or CI); `json` prints one summary object at the end.
 */
import type { RunSummary, Step, StepObserver, StepResult } from './steps.js';

export type OutputFormat = 'human' | 'json';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function humanObserver(out: NodeJS.WriteStream, env: NodeJS.ProcessEnv): StepObserver {
  const colour = !env.NO_COLOR && !env.CI && out.isTTY === true;
  const paint = (code: number, text: string) => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);
  let spinner: NodeJS.Timeout | undefined;
  const label = (index: number, total: number, phase: string, name: string) =>
    `step ${index}/${total} [${phase}] ${name}`;
  return {
    started(index, total, step: Step) {
      if (out.isTTY !== true || step.interactive) return;
      let frame = 0;
      spinner = setInterval(() => {
        out.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label(index, total, step.phase, step.name)}`);
      }, 80);
    },
    finished(result: StepResult, total) {
      if (spinner) clearInterval(spinner);
      spinner = undefined;
      const mark =
        result.outcome === 'passed' ? paint(32, '✓') : result.outcome === 'failed' ? paint(31, '✗') : paint(33, '-');
      const tail =
        result.outcome === 'passed'
          ? `${result.detail ? ` — ${result.detail}` : ''} (${result.durationMs} ms)`
          : result.outcome === 'failed'
            ? ` — ${result.error?.message ?? 'failed'}${result.error?.cause ? ` (cause: ${result.error.cause})` : ''}`
            : ' — skipped';
      out.write(
        `${out.isTTY === true ? '\r\u001b[2K' : ''}${mark} ${label(result.index, total, result.phase, result.name)}${tail}\n`,
      );
    },
  };
}

export const silentObserver: StepObserver = { started: () => undefined, finished: () => undefined };

export function printSummary(out: NodeJS.WriteStream, format: OutputFormat, summary: RunSummary): void {
  if (format === 'json') {
    out.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  out.write(
    `\n${summary.success ? 'All steps passed' : 'Some steps did not pass'}: ${summary.passed_steps} passed, ` +
      `${summary.failed_steps} failed, ${summary.skipped_steps} skipped of ${summary.total_steps} ` +
      `(${(summary.duration_ms / 1000).toFixed(1)} s)\n`,
  );
}
