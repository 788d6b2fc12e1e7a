/**
 * Secret references in configuration (CFG-02, CFG-03). Secrets live in files (Docker secrets under
 * `/run/secrets/`), never inline in YAML, in plain environment variables or on the command line.
 *
 * Three spellings, all resolved before validation:
 * - any string value `file:///run/secrets/postgres_url.secret` is replaced by that file's content;
 * - a key `foo_file: /run/secrets/x` means "read `foo` from this file": the result has `foo` and no `foo_file`.
 *   A relative path is resolved against the directory of the config file that declares it. Because of this
 *   rule, keys ending in `_file` are reserved for secret references: name plain path settings `*_path`;
 * - an environment variable `<APP>_<KEY>_FILE=/abs/path` (APP upper-cased, `-` → `_`; nesting levels of KEY
 *   joined by `__`) does the same for the dotted key and wins over every config file:
 *   `KMS_DATABASE__URL_FILE=/run/secrets/postgres_url` sets `database.url`. Other variables are never read.
 *
 * One trailing newline (`\n` or `\r\n`) is trimmed, as secret files are usually written with one.
 * Errors name the dotted config key and the file path, never the content.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';

const FILE_URL_PREFIX = 'file://';
const FILE_KEY_SUFFIX = '_file';
/** Secrets are keys, passwords and URLs: anything larger is a mistake (e.g. a directory or a log file). */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024;

/** A pending "read this file" placeholder; a leaf for merging, so a later layer can replace it unread. */
export class SecretFileReference {
  constructor(readonly path: string) {}
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function joinKey(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** Reads one secret file; the error names `key`, the path and the reason, never the content. */
export function readSecretFile(path: string, key: string): string {
  let content: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_SECRET_FILE_BYTES) {
      throw new ConfigError(`${key}: secret file ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`, key);
    }
    content = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${key}: cannot read secret file ${path} (${reason})`, key);
  }
  return content.replace(/\r?\n$/, '');
}

function fileUrlToPath(url: string, key: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    throw new ConfigError(`${key}: '${url}' is not a file:///absolute/path reference`, key);
  }
}

/**
 * Returns a copy of one config layer where every secret reference is a `SecretFileReference`
 * (nothing is read yet). `baseDir` anchors relative `*_file` paths.
 */
export function markSecretReferences(value: unknown, baseDir: string, path = ''): unknown {
  if (typeof value === 'string' && value.startsWith(FILE_URL_PREFIX)) {
    return new SecretFileReference(fileUrlToPath(value, path));
  }
  if (Array.isArray(value))
    return value.map((item, index) => markSecretReferences(item, baseDir, joinKey(path, index)));
  if (!isPlainObject(value)) return value;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!key.endsWith(FILE_KEY_SUFFIX) || key === FILE_KEY_SUFFIX) {
      result[key] = markSecretReferences(item, baseDir, joinKey(path, key));
      continue;
    }
    const target = key.slice(0, -FILE_KEY_SUFFIX.length);
    const targetKey = joinKey(path, target);
    if (typeof item !== 'string' || item === '') {
      throw new ConfigError(`${joinKey(path, key)}: expected the path of a file holding ${targetKey}`, targetKey);
    }
    if (Object.hasOwn(value, target)) {
      throw new ConfigError(`${targetKey}: set either ${target} or ${key}, not both`, targetKey);
    }
    result[target] = new SecretFileReference(isAbsolute(item) ? item : resolve(baseDir, item));
  }
  return result;
}

/** Reads every `SecretFileReference` left after merging, replacing it with the file's content. */
export function readSecretReferences(value: unknown, path = ''): unknown {
  if (value instanceof SecretFileReference) return readSecretFile(value.path, path || '(root)');
  if (Array.isArray(value)) return value.map((item, index) => readSecretReferences(item, joinKey(path, index)));
  if (!isPlainObject(value)) return value;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) result[key] = readSecretReferences(item, joinKey(path, key));
  return result;
}

/** The environment prefix of an application: `kms` → `KMS_`, `my-app` → `MY_APP_`. */
export function environmentPrefix(app: string): string {
  return `${app.toUpperCase().replace(/-/g, '_')}_`;
}

export interface EnvironmentSecretReference {
  variable: string;
  /** `{database: {url: SecretFileReference}}` for `KMS_DATABASE__URL_FILE`. */
  content: Record<string, unknown>;
}

/** The `<APP>_<KEY>_FILE` variables as unread references, sorted by name so the result is deterministic. */
export function secretReferencesFromEnv(app: string, env: NodeJS.ProcessEnv): EnvironmentSecretReference[] {
  const prefix = environmentPrefix(app);
  const suffix = FILE_KEY_SUFFIX.toUpperCase();
  return Object.keys(env)
    .filter(
      (variable) =>
        variable.length > prefix.length + suffix.length && variable.startsWith(prefix) && variable.endsWith(suffix),
    )
    .sort()
    .map((variable) => {
      const segments = variable.slice(prefix.length, -suffix.length).toLowerCase().split('__');
      const path = env[variable] ?? '';
      if (segments.some((segment) => !/^[a-z0-9][a-z0-9_]*$/.test(segment))) {
        throw new ConfigError(`$${variable}: cannot map the variable name to a config key (use ${prefix}A__B_FILE)`);
      }
      const key = segments.join('.');
      if (!isAbsolute(path)) {
        throw new ConfigError(`$${variable}: ${key}: expected the absolute path of a file holding ${key}`, key);
      }
      const content = segments.reduceRight<unknown>(
        (inner, segment) => ({ [segment]: inner }),
        new SecretFileReference(path),
      );
      return { variable, content: content as Record<string, unknown> };
    });
}

/** Marks and reads in one step, for a single object (relative `*_file` paths against `baseDir`, default cwd). */
export function resolveSecretReferences(value: unknown, baseDir = process.cwd()): unknown {
  return readSecretReferences(markSecretReferences(value, baseDir));
}
