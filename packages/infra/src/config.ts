/**
 * Typed configuration, read once at startup (CFG-03, CFG-05, CFG-06, C-21). This module is the only reader of
 * the process environment; everything else receives the typed object.
 *
 * - Files: the `--config` files, layered left to right (later wins; objects merge deeply, arrays and scalars
 *   are replaced). Without `--config`, the first that exists of `~/.config/<app>/config.yml`
 *   (`$XDG_CONFIG_HOME/<app>/config.yml` when set) and `/etc/<app>/config.yml`; none found = schema defaults.
 * - Environment: only `<APP>_<KEY>_FILE` variables (Docker secrets), applied over all files, see secrets.ts.
 *   Plain values never come from the environment, so a secret cannot sit in `docker inspect` output.
 * - Secret references (`file:///…` values, `foo_file:` keys, `*_FILE` variables) are resolved after merging,
 *   so a later layer can replace a reference without the earlier file being read.
 * - Keys are snake_case. Validation is zod's; unknown keys are rejected even if the schema is not strict.
 * - Any failure is a `ConfigError` naming the dotted key (`database.pool_size: expected number ≥ 1`) and the
 *   file that set it when known. Values are never echoed, so a secret cannot leak into the message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import type { z } from 'zod';
import { type CliArgs, parseCliArgs } from './cli-args.js';
import { ConfigError } from './errors.js';
import { markSecretReferences, readSecretReferences, secretReferencesFromEnv } from './secrets.js';

export interface LoadConfigOptions {
  /** Application name (`kms`, `identity`): selects the default search paths and the environment prefix. */
  app: string;
  /** Command-line arguments (`process.argv.slice(2)`): their `--config` files are used unless `configFiles` is set. */
  args?: readonly string[];
  /** `--config` files in order; when empty, the default search paths are tried. */
  configFiles?: readonly string[];
  /** Environment for `HOME`, `XDG_CONFIG_HOME` and `<APP>_*_FILE` (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Replaces `~/.config/<app>/config.yml`, `/etc/<app>/config.yml` (tests, packaging). */
  defaultSearchPaths?: readonly string[];
}

type PathSegment = string | number;

/** One parsed config file, secret references marked but not read. */
export interface ConfigLayer {
  file: string;
  content: unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Deep merge of two layers: plain objects merge key by key; anything else in `layer` replaces `base`. */
export function deepMerge(base: unknown, layer: unknown): unknown {
  if (layer === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(layer)) return layer;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(layer)) merged[key] = deepMerge(base[key], value);
  return merged;
}

/** `~/.config/<app>/config.yml` (or under `$XDG_CONFIG_HOME`), then `/etc/<app>/config.yml`. */
export function defaultSearchPaths(app: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(app)) throw new ConfigError(`invalid application name '${app}'`);
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return [join(configHome, app, 'config.yml'), join('/etc', app, 'config.yml')];
}

/** The files that will be read: the given ones, or the first default path that exists (possibly none). */
export function configFilesToRead(options: LoadConfigOptions): string[] {
  const explicit = options.configFiles ?? (options.args ? parseCliArgs(options.args).configFiles : []);
  if (explicit.length > 0) return [...explicit];
  const candidates = options.defaultSearchPaths ?? defaultSearchPaths(options.app, options.env);
  const found = candidates.find((path) => existsSync(path));
  return found ? [found] : [];
}

/** One layer per `<APP>_<KEY>_FILE` variable, named after the variable for error messages. */
function environmentLayers(app: string, env: NodeJS.ProcessEnv): ConfigLayer[] {
  return secretReferencesFromEnv(app, env).map(({ variable, content }) => ({ file: `$${variable}`, content }));
}

function readLayer(file: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let content: unknown;
  try {
    content = parse(text) ?? {};
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : 'parse error';
    throw new ConfigError(`${file}: invalid YAML (${reason})`);
  }
  if (!isPlainObject(content)) throw new ConfigError(`${file}: the top level must be a mapping of keys`);
  try {
    return { file, content: markSecretReferences(content, dirname(file)) };
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${file}: ${error.message}`, error.key);
    throw error;
  }
}

export function formatKey(path: readonly PropertyKey[]): string {
  const text = path.reduce<string>((acc, segment) => {
    if (typeof segment === 'number') return `${acc}[${segment}]`;
    return acc ? `${acc}.${String(segment)}` : String(segment);
  }, '');
  return text || '(root)';
}

/** `a.b[0].c` → `['a', 'b', 0, 'c']`. */
function keyToPath(key: string): PathSegment[] {
  return (key.match(/[^.[\]]+|\[\d+\]/g) ?? []).map((part) =>
    part.startsWith('[') ? Number(part.slice(1, -1)) : part,
  );
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let node = root;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') node = node[segment];
    else if (isPlainObject(node) && typeof segment === 'string' && Object.hasOwn(node, segment)) node = node[segment];
    else return undefined;
  }
  return node;
}

/** The last file that set `path` (or its nearest parent), for error messages. */
function sourceOf(layers: readonly ConfigLayer[], path: readonly PathSegment[]): string | undefined {
  for (let length = path.length; length > 0; length--) {
    const prefix = path.slice(0, length);
    for (let index = layers.length - 1; index >= 0; index--) {
      const layer = layers[index] as ConfigLayer;
      if (valueAt(layer.content, prefix) !== undefined) return layer.file;
    }
  }
  return undefined;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? 'object' : typeof value;
}

function bound(issue: { origin?: unknown; inclusive?: boolean }, limit: unknown, lower: boolean): string {
  const op = lower ? (issue.inclusive === false ? '>' : '≥') : issue.inclusive === false ? '<' : '≤';
  const text = String(limit);
  if (issue.origin === 'string') return `expected ${lower ? 'at least' : 'at most'} ${text} characters`;
  if (issue.origin === 'array') return `expected ${lower ? 'at least' : 'at most'} ${text} items`;
  return `expected ${String(issue.origin ?? 'value')} ${op} ${text}`;
}

/** One line per zod issue; the configured value is described by type only, never printed. */
function describeIssue(issue: z.core.$ZodIssue, raw: unknown): { path: PathSegment[]; text: string } {
  const path = issue.path.filter((segment): segment is PathSegment => typeof segment !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      return { path: [...path, issue.keys[0] ?? '?'], text: 'unknown key' };
    case 'invalid_type': {
      const value = valueAt(raw, path);
      if (value === undefined) return { path, text: `required (expected ${issue.expected})` };
      return { path, text: `expected ${issue.expected}, got ${describeType(value)}` };
    }
    case 'too_small':
      return { path, text: bound(issue, issue.minimum, true) };
    case 'too_big':
      return { path, text: bound(issue, issue.maximum, false) };
    case 'invalid_value':
      return { path, text: `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}` };
    default:
      return { path, text: issue.message };
  }
}

/** Keys present in `raw` but dropped by a non-strict zod object, as paths. */
function strippedKeys(raw: unknown, parsed: unknown, path: PathSegment[] = []): PathSegment[][] {
  if (Array.isArray(raw) && Array.isArray(parsed)) {
    return raw.flatMap((item, index) => strippedKeys(item, parsed[index], [...path, index]));
  }
  if (!isPlainObject(raw) || !isPlainObject(parsed)) return [];
  return Object.keys(raw).flatMap((key) =>
    Object.hasOwn(parsed, key) ? strippedKeys(raw[key], parsed[key], [...path, key]) : [[...path, key]],
  );
}

function configError(problems: { path: PathSegment[]; text: string }[], layers: readonly ConfigLayer[]): ConfigError {
  const lines = problems.map(({ path, text }) => {
    const file = sourceOf(layers, path);
    return `${file ? `${file}: ` : ''}${formatKey(path)}: ${text}`;
  });
  const first = problems[0];
  return new ConfigError(lines.join('; '), first ? formatKey(first.path) : undefined);
}

/**
 * Validates merged, secret-resolved raw configuration. `layers` only serve to name the file
 * that set a bad key.
 */
export function parseConfig<T>(schema: z.ZodType<T>, raw: unknown, layers: readonly ConfigLayer[] = []): T {
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw configError(
      result.error.issues.map((issue) => describeIssue(issue, raw)),
      layers,
    );
  }
  const unknown = strippedKeys(raw, result.data);
  if (unknown.length > 0) {
    throw configError(
      unknown.map((path) => ({ path, text: 'unknown key' })),
      layers,
    );
  }
  return result.data;
}

/** Reads, layers, resolves secrets and validates; throws `ConfigError` on any problem. */
export function loadConfig<T>(schema: z.ZodType<T>, options: LoadConfigOptions): T {
  const layers = [
    ...configFilesToRead(options).map(readLayer),
    ...environmentLayers(options.app, options.env ?? process.env),
  ];
  const merged = layers.reduce<unknown>((acc, layer) => deepMerge(acc, layer.content), {});
  let resolved: unknown;
  try {
    resolved = readSecretReferences(merged);
  } catch (error) {
    if (!(error instanceof ConfigError) || error.key === undefined) throw error;
    const file = sourceOf(layers, keyToPath(error.key));
    throw new ConfigError(file ? `${file}: ${error.message}` : error.message, error.key);
  }
  return parseConfig(schema, resolved, layers);
}

export interface StartupConfig<T> {
  cli: CliArgs;
  config: T;
}

/** The composition root's one call: parses the start flags, then loads the configuration they name. */
export function loadStartupConfig<T>(
  schema: z.ZodType<T>,
  options: Omit<LoadConfigOptions, 'args' | 'configFiles'> & { args: readonly string[] },
): StartupConfig<T> {
  const cli = parseCliArgs(options.args);
  return { cli, config: loadConfig(schema, { ...options, configFiles: cli.configFiles }) };
}
