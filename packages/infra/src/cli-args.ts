/**
 * The start flags shared by both apps (deployments.md "Running"):
 * `[--config file.yml]... [--demo] [--reset-demo] [--dev] [--dev-insecure-http]`.
 * Secrets never come from flags: they are `file://` references inside the config files.
 */
import { ConfigError } from './errors.js';

export interface CliArgs {
  /** In order; later files override earlier ones. Empty = default search paths. */
  configFiles: string[];
  /** Seed the demo data (idempotent). */
  demo: boolean;
  /** Delete and reseed the demo data; implies `demo`. */
  resetDemo: boolean;
  /** Developer conveniences (e.g. no client certificate on the admin listener). */
  dev: boolean;
  /** Plain HTTP listeners; only together with `--dev`. */
  devInsecureHttp: boolean;
}

const USAGE = '[--config <file.yml>]... [--demo] [--reset-demo] [--dev] [--dev-insecure-http]';

function configValue(arg: string, value: string | undefined): string {
  if (!value || value.startsWith('-')) throw new ConfigError(`${arg} needs a file path (usage: ${USAGE})`);
  return value;
}

/** Parses `process.argv.slice(2)`; an unknown flag or a missing value is a `ConfigError` showing the usage. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { configFiles: [], demo: false, resetDemo: false, dev: false, devInsecureHttp: false };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (arg === '--') continue; // `pnpm start -- --config x` passes the separator through
    if (arg === '--config' || arg === '-c') {
      args.configFiles.push(configValue(arg, argv[++index]));
    } else if (arg.startsWith('--config=')) {
      args.configFiles.push(configValue('--config', arg.slice('--config='.length)));
    } else if (arg === '--demo') {
      args.demo = true;
    } else if (arg === '--reset-demo') {
      args.resetDemo = true;
      args.demo = true;
    } else if (arg === '--dev') {
      args.dev = true;
    } else if (arg === '--dev-insecure-http') {
      args.devInsecureHttp = true;
    } else {
      throw new ConfigError(`unknown argument '${arg}' (usage: ${USAGE})`);
    }
  }
  if (args.devInsecureHttp && !args.dev) throw new ConfigError('--dev-insecure-http requires --dev');
  return args;
}
