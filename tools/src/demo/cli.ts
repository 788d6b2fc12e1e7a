/**
 * The demo CLI (deployments.md "Demo CLI"): `demo <kms|identity|all|help|version>` starts the services it
 * needs (or attaches to running ones), waits for them, runs the numbered steps and reports them.
 * Exit codes: 0 every step passed, 1 some step failed, 2 nothing could run or the usage was wrong.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deviceSteps } from './device-steps.js';
import { identitySteps } from './identity-steps.js';
import { integrationSteps } from './integration-steps.js';
import { kmsSteps } from './kms-steps.js';
import { humanObserver, printSummary, silentObserver, type OutputFormat } from './report.js';
import { ROOT, attachDemoServices, startDemoServices, type DemoServices } from './services.js';
import { runSteps, type RunSummary, type Step } from './steps.js';

const USAGE = `usage: pnpm demo:<kms|identity|all> [-- options]   or   node tools/dist/demo/cli.js <command> [options]

commands:
  kms        KMS walkthrough: seeded keys, create, encrypt/decrypt, sign/verify, rotate, data key
  identity   Identity walkthrough: discovery, JWKS, client credentials, introspection, code + PKCE,
             refresh rotation, reuse detection, revocation
  all        both, then Identity tokens used at the KMS (scopes enforced)
  help       this text
  version    the version

options:
  -o, --output human|json     report format (default human)
  --attach <url>              use a running service instead of starting one (kms or identity)
  --attach-kms <url>          for "all": the running KMS
  --attach-identity <url>     for "all": the running Identity
  --ca <file>                 the CA that attached services chain to (default .data/tls/root-ca.pem)
  --health-timeout <seconds>  how long to wait for readiness (default 30)
  --fail-fast                 stop at the first failed step (the rest count as skipped)
  --device                    for "identity" and "all": instead of the walkthrough, sign in as a person with
                              the device flow (RFC 8628): prints a URL and a code, waits while you approve
                              in a browser (demo-user / demo-user-password), then uses the token at userinfo
                              ("identity") or at the KMS ("all")
`;

class UsageError extends Error {}

type Command = 'kms' | 'identity' | 'all';

interface Options {
  command: Command;
  output: OutputFormat;
  attachKms?: string | undefined;
  attachIdentity?: string | undefined;
  ca: string;
  healthTimeoutMs: number;
  failFast: boolean;
  device: boolean;
}

function parse(argv: string[]): Options | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    // `pnpm demo:kms -- --attach …` passes the `--` through; options after it are still options here.
    args: argv.filter((arg) => arg !== '--'),
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o', default: 'human' },
      attach: { type: 'string' },
      'attach-kms': { type: 'string' },
      'attach-identity': { type: 'string' },
      ca: { type: 'string', default: join(ROOT, '.data/tls/root-ca.pem') },
      'health-timeout': { type: 'string', default: '30' },
      'fail-fast': { type: 'boolean', default: false },
      device: { type: 'boolean', default: false },
    },
  });
  const [command, ...extra] = positionals;
  if (command === 'help' || command === 'version') return command;
  if (command !== 'kms' && command !== 'identity' && command !== 'all') {
    throw new UsageError(command === undefined ? 'a command is needed' : `unknown command "${command}"`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (values.output !== 'human' && values.output !== 'json') throw new UsageError('--output is human or json');
  const seconds = Number(values['health-timeout']);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--health-timeout is a number of seconds');
  if (values.attach && command === 'all') throw new UsageError('for "all", use --attach-kms and --attach-identity');
  if (values.device && command === 'kms') throw new UsageError('--device is for "identity" and "all"');
  return {
    command,
    output: values.output,
    attachKms: command === 'kms' ? (values.attach ?? values['attach-kms']) : values['attach-kms'],
    attachIdentity: command === 'identity' ? (values.attach ?? values['attach-identity']) : values['attach-identity'],
    ca: values.ca,
    healthTimeoutMs: seconds * 1000,
    failFast: values['fail-fast'],
    device: values.device,
  };
}

async function services(options: Options): Promise<DemoServices> {
  const wants = { kms: options.command !== 'identity', identity: options.command !== 'kms' };
  const attaching = options.attachKms !== undefined || options.attachIdentity !== undefined;
  if (!attaching) return startDemoServices(wants, options.healthTimeoutMs);
  if ((wants.kms && !options.attachKms) || (wants.identity && !options.attachIdentity)) {
    throw new UsageError('attach every service the command needs (or none, to start them)');
  }
  return attachDemoServices(
    {
      ...(wants.kms ? { kms: options.attachKms } : {}),
      ...(wants.identity ? { identity: options.attachIdentity } : {}),
    },
    await readFile(options.ca, 'utf8'),
    options.healthTimeoutMs,
  );
}

function steps(options: Options, running: DemoServices): Step[] {
  const { command } = options;
  const kms = running.kms?.publicUrl ?? '';
  const identity = running.identity?.publicUrl ?? '';
  if (options.device) {
    // The person reads the URL and code: on stdout, or on stderr when stdout carries the JSON summary.
    const out = options.output === 'human' ? process.stdout : process.stderr;
    const prompt = { write: (text: string) => void out.write(text), isTTY: out.isTTY === true };
    return deviceSteps(running.dispatcher, identity, prompt, command === 'all' ? kms : undefined);
  }
  return [
    ...(command !== 'identity' ? kmsSteps(running.dispatcher, kms) : []),
    ...(command !== 'kms' ? identitySteps(running.dispatcher, identity) : []),
    ...(command === 'all' ? integrationSteps(running.dispatcher, identity, kms, running.kms?.adminUrl) : []),
  ];
}

function setupFailure(message: string): RunSummary {
  return {
    success: false,
    total_steps: 0,
    passed_steps: 0,
    failed_steps: 0,
    skipped_steps: 0,
    errors: [{ phase: 'setup', step: 'start services', message }],
    duration_ms: 0,
  };
}

async function main(argv: string[]): Promise<number> {
  let options: Options | 'help' | 'version';
  try {
    options = parse(argv);
  } catch (error) {
    process.stderr.write(`demo: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options === 'version') {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'tools/package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const human = options.output === 'human';
  if (human)
    process.stdout.write(
      `demo ${options.command}: ${options.attachKms || options.attachIdentity ? 'attaching to' : 'starting'} the services…\n`,
    );
  let running: DemoServices;
  try {
    running = await services(options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError) process.stderr.write(`demo: ${message}\n\n${USAGE}`);
    else if (human) process.stderr.write(`demo: nothing could run: ${message}\n`);
    else printSummary(process.stdout, 'json', setupFailure(message));
    return 2;
  }
  try {
    if (human) {
      const urls = [
        running.kms && `KMS ${running.kms.publicUrl}`,
        running.identity && `Identity ${running.identity.publicUrl}`,
      ];
      process.stdout.write(`ready: ${urls.filter(Boolean).join(', ')}\n`);
    }
    const summary = await runSteps(
      steps(options, running),
      options.failFast,
      human ? humanObserver(process.stdout, process.env) : silentObserver,
    );
    printSummary(process.stdout, options.output, summary);
    return summary.success ? 0 : 1;
  } finally {
    await running.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
