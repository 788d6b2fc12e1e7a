import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  configFilesToRead,
  deepMerge,
  defaultSearchPaths,
  loadConfig,
  loadStartupConfig,
  parseConfig,
} from './config.js';
import { ConfigError } from './errors.js';

const schema = z.strictObject({
  service: z.strictObject({ name: z.string(), port: z.number().int().min(1).max(65535) }),
  database: z.strictObject({
    url: z.string(),
    pool_size: z.number().int().min(1).default(5),
    password: z.string().optional(),
  }),
  tags: z.array(z.string()).default([]),
  log: z.object({ level: z.enum(['info', 'debug']).default('info') }).default({ level: 'info' }),
});

let dir: string;
async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'config-test-'));
});

describe('loadConfig layering', () => {
  it('layers files left to right: objects merge, later scalars and arrays win', async () => {
    const base = await file(
      'base.yml',
      'service: {name: kms, port: 8081}\ndatabase: {url: "sqlite::memory:"}\ntags: [a, b]\n',
    );
    const override = await file('override.yml', 'service: {port: 9000}\ntags: [c]\n');
    expect(loadConfig(schema, { app: 'kms', configFiles: [base, override] })).toEqual({
      service: { name: 'kms', port: 9000 },
      database: { url: 'sqlite::memory:', pool_size: 5 },
      tags: ['c'],
      log: { level: 'info' },
    });
  });

  it('merges deeply and keeps the base where a layer is silent', () => {
    expect(deepMerge({ a: { b: 1, c: 2 } }, { a: { c: 3 } })).toEqual({ a: { b: 1, c: 3 } });
    expect(deepMerge({ a: 1 }, undefined)).toEqual({ a: 1 });
    expect(deepMerge({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] });
  });

  it('treats an empty file as an empty layer and refuses a non-mapping top level', async () => {
    const base = await file('full.yml', 'service: {name: kms, port: 1}\ndatabase: {url: x}\n');
    const empty = await file('empty.yml', '');
    expect(loadConfig(schema, { app: 'kms', configFiles: [base, empty] }).service.name).toBe('kms');
    const list = await file('list.yml', '- a\n- b\n');
    expect(configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [list] })).message).toContain(
      'top level must be a mapping',
    );
  });
});

describe('loadConfig from command-line arguments', () => {
  it('takes the --config files from args, in order', async () => {
    const base = await file('args-a.yml', 'service: {name: kms, port: 1}\ndatabase: {url: a}\n');
    const override = await file('args-b.yml', 'database: {url: b}\n');
    const config = loadConfig(schema, { app: 'kms', args: ['--config', base, `--config=${override}`] });
    expect(config.database.url).toBe('b');
  });

  it('loadStartupConfig returns the typed flags with the configuration', async () => {
    const only = await file('startup.yml', 'service: {name: kms, port: 1}\ndatabase: {url: s}\n');
    const { cli, config } = loadStartupConfig(schema, { app: 'kms', args: ['--demo', '--config', only], env: {} });
    expect(cli).toEqual({ configFiles: [only], demo: true, resetDemo: false, dev: false, devInsecureHttp: false });
    expect(config.service.name).toBe('kms');
    expect(() => loadStartupConfig(schema, { app: 'kms', args: ['--verbose'] })).toThrow(/unknown argument/);
  });

  it('loadStartupConfig without --config falls back to the default search paths', async () => {
    const found = await file('startup-default.yml', 'service: {name: found, port: 1}\ndatabase: {url: s}\n');
    const { config } = loadStartupConfig(schema, { app: 'kms', args: [], defaultSearchPaths: [found], env: {} });
    expect(config.service.name).toBe('found');
  });
});

describe('loadConfig default search paths', () => {
  it('uses the first existing search path when no --config is given', async () => {
    const found = await file('home.yml', 'service: {name: from-home, port: 2}\ndatabase: {url: y}\n');
    const other = await file('etc.yml', 'service: {name: from-etc, port: 2}\ndatabase: {url: y}\n');
    const config = loadConfig(schema, { app: 'kms', defaultSearchPaths: [join(dir, 'none.yml'), found, other] });
    expect(config.service.name).toBe('from-home');
  });

  it('searches ~/.config/<app>/config.yml (HOME from env) before /etc/<app>/config.yml', async () => {
    const home = join(dir, 'home');
    await file('home/.config/kms/config.yml', 'service: {name: via-home, port: 3}\ndatabase: {url: z}\n');
    expect(defaultSearchPaths('kms', { HOME: home })).toEqual([
      join(home, '.config/kms/config.yml'),
      '/etc/kms/config.yml',
    ]);
    expect(defaultSearchPaths('kms', { XDG_CONFIG_HOME: '/xdg' })[0]).toBe('/xdg/kms/config.yml');
    expect(loadConfig(schema, { app: 'kms', env: { HOME: home } }).service.name).toBe('via-home');
    expect(() => defaultSearchPaths('../etc')).toThrow(ConfigError);
  });

  it('uses schema defaults only when nothing is found, and explicit files win over search paths', async () => {
    const optional = z.strictObject({ port: z.number().default(8081) });
    expect(loadConfig(optional, { app: 'kms', defaultSearchPaths: [join(dir, 'none.yml')] })).toEqual({ port: 8081 });
    const explicit = await file('explicit.yml', 'port: 1\n');
    expect(configFilesToRead({ app: 'kms', configFiles: [explicit], defaultSearchPaths: ['/nope'] })).toEqual([
      explicit,
    ]);
    expect(() => loadConfig(schema, { app: 'kms', defaultSearchPaths: [join(dir, 'none.yml')] })).toThrow(
      /service: required/,
    );
  });
});

describe('loadConfig secret references', () => {
  it('replaces file:// values and *_file keys with the file content, trailing newline trimmed', async () => {
    const url = await file('secrets/postgres_url.secret', 'postgres://user:pw@db/kms\n');
    const password = await file('secrets/db_password.secret', 'pa55\r\n');
    const cfg = await file(
      'secrets.yml',
      `service: {name: kms, port: 1}\ndatabase: {url: "file://${url}", password_file: ${password}}\n`,
    );
    const config = loadConfig(schema, { app: 'kms', configFiles: [cfg] });
    expect(config.database.url).toBe('postgres://user:pw@db/kms');
    expect(config.database.password).toBe('pa55');
  });

  it('resolves a relative *_file path against the config file directory', async () => {
    await file('nested/secrets/name.secret', 'kms-from-file\n');
    const cfg = await file(
      'nested/config.yml',
      'service: {name_file: secrets/name.secret, port: 1}\ndatabase: {url: x}\n',
    );
    expect(loadConfig(schema, { app: 'kms', configFiles: [cfg] }).service.name).toBe('kms-from-file');
  });

  it('lets a later layer replace a reference without reading the earlier file', async () => {
    const base = await file(
      'ref-base.yml',
      `service: {name: kms, port: 1}\ndatabase: {url: "file://${dir}/gone.secret"}\n`,
    );
    const override = await file('ref-override.yml', 'database: {url: "sqlite::memory:"}\n');
    expect(loadConfig(schema, { app: 'kms', configFiles: [base, override] }).database.url).toBe('sqlite::memory:');
  });

  it('fails naming the key and the config file when a secret file is missing, never the secret', async () => {
    const cfg = await file(
      'missing.yml',
      `service: {name: x, port: 1}\ndatabase: {url: "file://${dir}/nope.secret"}\n`,
    );
    const error = configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [cfg] }));
    expect(error.key).toBe('database.url');
    expect(error.message).toBe(`${cfg}: database.url: cannot read secret file ${dir}/nope.secret (ENOENT)`);
    const viaKey = await file(
      'missing-key.yml',
      `service: {name: x, port: 1}\ndatabase: {url: x, password_file: ./absent}\n`,
    );
    expect(configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [viaKey] })).key).toBe(
      'database.password',
    );
  });

  it('refuses malformed references', async () => {
    const relativeUrl = await file('rel.yml', 'service: {name: x, port: 1}\ndatabase: {url: "file://relative/x"}\n');
    const error = configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [relativeUrl] }));
    expect(error.message).toMatch(/rel\.yml: database\.url: .* not a file:\/\/\/absolute\/path/);
    const both = await file(
      'both.yml',
      'service: {name: x, port: 1}\ndatabase: {url: x, password: a, password_file: /b}\n',
    );
    expect(configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [both] })).message).toContain(
      'database.password: set either password or password_file, not both',
    );
    const notPath = await file('notpath.yml', 'service: {name: x, port: 1}\ndatabase: {url: x, password_file: 3}\n');
    expect(configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [notPath] })).key).toBe(
      'database.password',
    );
  });
});

describe('loadConfig <APP>_<KEY>_FILE environment variables', () => {
  it('reads the nested key from the named file, over every config file', async () => {
    const password = await file('env/db_password.secret', 'from-env\n');
    const cfg = await file('env.yml', 'service: {name: kms, port: 1}\ndatabase: {url: x, password: inline}\n');
    const config = loadConfig(schema, {
      app: 'kms',
      configFiles: [cfg],
      env: { KMS_DATABASE__PASSWORD_FILE: password, DATABASE__URL_FILE: '/ignored', KMS_DATABASE__URL: 'ignored' },
    });
    expect(config.database).toEqual({ url: 'x', password: 'from-env', pool_size: 5 });
  });

  it('fails naming the variable and the key when the file is missing, relative or the key unknown', async () => {
    const cfg = await file('env-base.yml', 'service: {name: kms, port: 1}\ndatabase: {url: x}\n');
    const missing = configErrorOf(() =>
      loadConfig(schema, { app: 'kms', configFiles: [cfg], env: { KMS_DATABASE__URL_FILE: `${dir}/none.secret` } }),
    );
    expect(missing.message).toBe(
      `$KMS_DATABASE__URL_FILE: database.url: cannot read secret file ${dir}/none.secret (ENOENT)`,
    );
    expect(missing.key).toBe('database.url');
    const relative = configErrorOf(() =>
      loadConfig(schema, { app: 'kms', configFiles: [cfg], env: { KMS_DATABASE__URL_FILE: 'secrets/url' } }),
    );
    expect(relative.message).toBe(
      '$KMS_DATABASE__URL_FILE: database.url: expected the absolute path of a file holding database.url',
    );
    const secret = await file('env/any.secret', 'v');
    const unknown = configErrorOf(() =>
      loadConfig(schema, { app: 'kms', configFiles: [cfg], env: { KMS_DATABSE__URL_FILE: secret } }),
    );
    expect(unknown.message).toBe('$KMS_DATABSE__URL_FILE: databse: unknown key');
    expect(() =>
      loadConfig(schema, { app: 'kms', configFiles: [cfg], env: { KMS_DATABASE___URL_FILE: secret } }),
    ).toThrow('$KMS_DATABASE___URL_FILE: cannot map the variable name to a config key (use KMS_A__B_FILE)');
  });
});

describe('loadConfig validation errors', () => {
  it('names the dotted key and the file for a bad value, without echoing values', async () => {
    const bad = await file('bad.yml', 'service: {name: kms, port: 1}\ndatabase: {url: "s3cr3t-url", pool_size: 0}\n');
    const error = configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [bad] }));
    expect(error.message).toBe(`${bad}: database.pool_size: expected number ≥ 1`);
    expect(error.key).toBe('database.pool_size');
    expect(error.message).not.toContain('s3cr3t');
  });

  it('names the layer that set the value when several files are given', async () => {
    const base = await file('layer-a.yml', 'service: {name: kms, port: 1}\ndatabase: {url: x}\n');
    const override = await file('layer-b.yml', 'service: {port: 70000}\n');
    const error = configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [base, override] }));
    expect(error.message).toBe(`${override}: service.port: expected number ≤ 65535`);
  });

  it('describes wrong types, missing keys, enums and lengths', () => {
    const raw = { service: { name: 1, port: 'x' }, database: {}, tags: [3], log: { level: 'loud' } };
    const error = configErrorOf(() => parseConfig(schema, raw));
    expect(error.message).toContain('service.name: expected string, got number');
    expect(error.message).toContain('service.port: expected number, got string');
    expect(error.message).toContain('database.url: required (expected string)');
    expect(error.message).toContain('tags[0]: expected string, got number');
    expect(error.message).toContain('log.level: expected one of "info", "debug"');
    expect(error.key).toBe('service.name');
    const lengths = z.strictObject({
      name: z.string().min(3).max(4),
      list: z.array(z.number()).min(1),
      n: z.number().lt(2),
    });
    const lengthError = configErrorOf(() => parseConfig(lengths, { name: 'ab', list: [], n: 5 }));
    expect(lengthError.message).toBe(
      'name: expected at least 3 characters; list: expected at least 1 items; n: expected number < 2',
    );
    expect(configErrorOf(() => parseConfig(lengths, { name: 'abcdef', list: [1], n: 1 })).message).toBe(
      'name: expected at most 4 characters',
    );
    const custom = z.strictObject({ url: z.url() });
    expect(configErrorOf(() => parseConfig(custom, { url: 'nope' })).message).toMatch(/^url: /);
  });

  it('rejects unknown keys, for strict and non-strict schemas alike', async () => {
    const typo = await file('typo.yml', 'service: {name: kms, port: 1, prot: 2}\ndatabase: {url: x}\n');
    const error = configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [typo] }));
    expect(error.message).toBe(`${typo}: service.prot: unknown key`);
    expect(error.key).toBe('service.prot');
    const loose = z.object({ server: z.object({ port: z.number() }), items: z.array(z.object({ a: z.number() })) });
    expect(configErrorOf(() => parseConfig(loose, { server: { port: 1, extra: true }, items: [] })).message).toBe(
      'server.extra: unknown key',
    );
    expect(configErrorOf(() => parseConfig(loose, { server: { port: 1 }, items: [{ a: 1, b: 2 }] })).key).toBe(
      'items[0].b',
    );
  });

  it('reports unreadable and invalid YAML files', async () => {
    const broken = await file('broken.yml', 'service: [unclosed\n');
    expect(configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [broken] })).message).toContain(
      `${broken}: invalid YAML`,
    );
    expect(
      configErrorOf(() => loadConfig(schema, { app: 'kms', configFiles: [join(dir, 'absent.yml')] })).message,
    ).toBe(`cannot read config file ${join(dir, 'absent.yml')} (ENOENT)`);
  });
});
