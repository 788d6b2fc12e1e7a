/**
 * The container deployment files (deployments/*compose*.yml): every combination the docs name merges and
 * validates with `docker-compose config` (Debian's docker-compose needs no engine), and the files keep the
 * rules of deployments.md: secrets only as files, every secret file present, a healthcheck for every
 * service, no host port used twice, both products on the telemetry network.
 */
import { describe, expect, it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const DEPLOYMENTS = resolve(import.meta.dirname ?? '.', '../../deployments');
/** Compose resolves every relative path against the first file's directory: the telemetry file comes first. */
const PROJECT_DIR = join(DEPLOYMENTS, 'telemetry');
const TELEMETRY = 'telemetry/compose.yml';
const KMS = 'kms/compose.yml';
const KMS_DEMO = 'kms/compose.demo.yml';
const IDENTITY = 'identity/compose.yml';
const IDENTITY_DEMO = 'identity/compose.demo.yml';
const INTEGRATION = 'compose.integration.yml';
const ALL_FILES = [TELEMETRY, KMS, KMS_DEMO, IDENTITY, IDENTITY_DEMO, INTEGRATION];
const COMBINATIONS = [
  [TELEMETRY],
  [TELEMETRY, KMS],
  [TELEMETRY, KMS, KMS_DEMO],
  [TELEMETRY, IDENTITY],
  [TELEMETRY, IDENTITY, IDENTITY_DEMO],
  [TELEMETRY, KMS, IDENTITY, INTEGRATION],
  [TELEMETRY, KMS, KMS_DEMO, IDENTITY, IDENTITY_DEMO, INTEGRATION],
];
const PROFILES = ['dev', 'demo', 'ci', 'prod', 'postgres'];

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string> | string[];
  healthcheck?: unknown;
  labels?: Record<string, string>;
  networks?: string[] | Record<string, unknown>;
  ports?: (string | { published: string | number; host_ip?: string })[];
  secrets?: (string | { source: string })[];
}

interface ComposeFile {
  services: Record<string, Service>;
  secrets?: Record<string, { file: string }>;
}

const load = (file: string) => parse(readFileSync(join(DEPLOYMENTS, file), 'utf8'), { merge: true }) as ComposeFile;
const secretFiles = () =>
  ALL_FILES.flatMap((file) =>
    Object.values(load(file).secrets ?? {}).map((secret) => resolve(PROJECT_DIR, secret.file)),
  );

const COMPOSE = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (!COMPOSE) console.warn('docker-compose config checks skipped: no docker-compose (apt-get install docker-compose).');
const withCompose = COMPOSE ? it : it.skip;

function compose(files: string[], profile: string, ...args: string[]) {
  return spawnSync(
    'docker-compose',
    [...files.flatMap((file) => ['-f', join(DEPLOYMENTS, file)]), '--profile', profile, 'config', ...args],
    { encoding: 'utf8' },
  );
}

/** `compose` without blocking the event loop, so several run at once. */
function composeAsync(
  files: string[],
  profile: string,
  ...args: string[]
): Promise<{ status: number; stderr: string }> {
  return new Promise((done) => {
    execFile(
      'docker-compose',
      [...files.flatMap((file) => ['-f', join(DEPLOYMENTS, file)]), '--profile', profile, 'config', ...args],
      (error, _stdout, stderr) => done({ status: error ? Number(error.code ?? 1) : 0, stderr }),
    );
  });
}

describe('container deployment files', () => {
  withCompose('merge and validate with docker-compose config, in every combination and profile', async () => {
    const runs = COMBINATIONS.flatMap((files) => PROFILES.map((profile) => ({ files, profile })));
    // Three docker-compose processes at a time (each is mostly interpreter start-up).
    const outcomes: unknown[][] = [];
    const next = async (): Promise<void> => {
      const run = runs.shift();
      if (!run) return;
      const result = await composeAsync(run.files, run.profile, '-q');
      outcomes.push([run.files.join(' + '), run.profile, result.status, result.stderr.trim()]);
      return next();
    };
    await Promise.all([next(), next(), next()]);
    expect(outcomes.filter((outcome) => outcome[2] !== 0 || outcome[3] !== '')).toEqual([]);
    expect(outcomes).toHaveLength(COMBINATIONS.length * PROFILES.length);
  });

  withCompose('give every merged service a healthcheck (or a probe) and every product the telemetry network', () => {
    for (const profile of PROFILES) {
      const merged = parse(compose(COMBINATIONS.at(-1)!, profile).stdout) as ComposeFile;
      const services = merged.services;
      expect(Object.keys(services).length).toBeGreaterThan(3);
      for (const [name, service] of Object.entries(services)) {
        const probe = service.labels?.['cryptoutil.health-probe'];
        const oneShot = service.labels?.['cryptoutil.one-shot'] === 'true';
        const healthy = service.healthcheck !== undefined || oneShot || (probe && services[probe]?.healthcheck);
        expect([profile, name, Boolean(healthy)]).toEqual([profile, name, true]);
        if (service.image?.startsWith('cryptoutil/')) {
          const networks = Array.isArray(service.networks) ? service.networks : Object.keys(service.networks ?? {});
          expect([name, networks]).toEqual([name, expect.arrayContaining(['telemetry'])]);
        }
      }
      for (const secret of Object.values(merged.secrets ?? {})) expect(existsSync(secret.file)).toBe(true);
    }
  });

  it('keep secrets out of environment variables: only *_FILE paths, and no secret file content', () => {
    const contents = secretFiles().map((file) => readFileSync(file, 'utf8').trim());
    for (const file of ALL_FILES) {
      for (const [name, service] of Object.entries(load(file).services)) {
        const environment = Array.isArray(service.environment)
          ? Object.fromEntries(service.environment.map((pair) => pair.split('=', 2)))
          : (service.environment ?? {});
        for (const [key, value] of Object.entries(environment)) {
          const where = `${file} ${name} ${key}`;
          if (/PASSWORD|SECRET|TOKEN|KEY|DSN|DATABASE_URL|CREDENTIAL/i.test(key)) {
            expect([where, /_FILE$/.test(key) && String(value).startsWith('/run/secrets/')]).toEqual([where, true]);
          }
          expect([where, contents.some((secret) => String(value).includes(secret))]).toEqual([where, false]);
        }
      }
    }
  });

  it('name only secret files that exist, and every app secret is referenced as a file', () => {
    const files = secretFiles();
    expect(files.length).toBeGreaterThanOrEqual(15);
    for (const file of files) expect([file, existsSync(file)]).toEqual([file, true]);
    for (const config of ['kms/config/kms.yml', 'identity/config/identity.yml']) {
      const text = readFileSync(join(DEPLOYMENTS, config), 'utf8');
      expect(text.match(/file:\/\/\/run\/secrets\/\w+/g)?.length).toBeGreaterThan(0);
    }
  });

  it('use distinct host ports across all files (KMS 8081/9081, Identity 8082/9082), on loopback', () => {
    const byService = new Map<string, Set<string>>();
    for (const file of ALL_FILES) {
      for (const [name, service] of Object.entries(load(file).services)) {
        const ports = byService.get(name) ?? new Set<string>();
        for (const port of service.ports ?? []) {
          const text = typeof port === 'string' ? port : `${port.host_ip ?? ''}:${port.published}:`;
          const [host, published] = text.split(':');
          expect([name, host]).toEqual([name, '127.0.0.1']);
          ports.add(String(published));
        }
        byService.set(name, ports);
      }
    }
    const owners = new Map<string, string>();
    for (const [name, ports] of byService) {
      for (const port of ports) {
        expect([port, owners.get(port) ?? name]).toEqual([port, name]);
        owners.set(port, name);
      }
    }
    expect([...(byService.get('kms') ?? [])].sort()).toEqual(['8081', '9081']);
    expect([...(byService.get('identity') ?? [])].sort()).toEqual(['8082', '9082']);
  });
});
