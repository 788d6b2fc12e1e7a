/**
 * The Kubernetes deployment (deployments/k8s, issue #17), checked offline: each overlay renders with
 * `kubectl kustomize` (no cluster needed), every object validates against the Kubernetes (and
 * cert-manager) schemas of `kubernetes-models`, and the rules hold: probes on every container, non-root,
 * read-only root filesystem, limits set, no secret in an environment variable, no admin port in any
 * Service, a NetworkPolicy per service, config maps made of the compose deployment's own config files.
 * `pnpm k8s:tls` output, mounted the way the Deployments mount it, serves TLS and passes the KMS probe.
 */
import { describe, expect, it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { closeServer, createListenerPair, listen } from '@cryptoutil/tls';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname ?? '.', '../..');
const KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const suite = KUBECTL ? describe : describe.skip;
if (!KUBECTL) console.warn('Kubernetes render tests skipped: no kubectl on PATH.');

const ADMIN_PORTS = new Set([9081, 9082, 'admin']);
const TLS_SECRETS = ['healthcheck-tls', 'identity-tls', 'kms-tls'];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
}
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, unknown> }[];
  envFrom?: Record<string, unknown>[];
  startupProbe?: unknown;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  resources?: { limits?: { cpu?: string; memory?: string } };
}
interface PodSpec {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
  volumes?: {
    name: string;
    secret?: { secretName: string };
    projected?: { sources: { secret?: { name: string } }[] };
  }[];
}
type Workload = K8sObject & { spec: { replicas?: number; template: { spec: PodSpec } } };

function render(overlay: string): K8sObject[] {
  const result = spawnSync('kubectl', ['kustomize', join(ROOT, 'deployments/k8s/overlays', overlay)], {
    encoding: 'utf8',
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return parseAllDocuments(result.stdout).map((document) => document.toJS() as K8sObject);
}

/** The `kubernetes-models` class of an object's apiVersion and kind. */
async function modelOf(object: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  const module = (await (group === 'cert-manager.io'
    ? import(`@kubernetes-models/cert-manager/${group}/${version}`)
    : import(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`))) as Record<
    string,
    new (data: unknown) => { validate(): void }
  >;
  const model = module[object.kind];
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  return model;
}

/**
 * kustomize wraps a Secret's base64 at 70 characters; the API server's decoder skips the line breaks, the
 * schema's `byte` format does not, so they are taken out before validating.
 */
function decodable(object: K8sObject): K8sObject {
  if (object.kind !== 'Secret' || !object.data) return object;
  const data = Object.fromEntries(
    Object.entries(object.data as Record<string, string>).map(([key, value]) => [key, value.replace(/\s/g, '')]),
  );
  return { ...object, data };
}

const workloads = (objects: K8sObject[]) =>
  objects.filter((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet') as Workload[];
const named = (objects: K8sObject[], kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata.name === name);
const secretsMounted = (workload: Workload) =>
  (workload.spec.template.spec.volumes ?? []).flatMap((volume) => [
    ...(volume.secret ? [volume.secret.secretName] : []),
    ...(volume.projected?.sources ?? []).flatMap((source) => (source.secret ? [source.secret.name] : [])),
  ]);

suite('Kubernetes deployment (kubectl kustomize, validated offline)', () => {
  const overlays = { demo: render('demo'), prod: render('prod'), 'prod-cert-manager': render('prod-cert-manager') };

  it.each(Object.keys(overlays))('%s: every object validates against its schema', async (overlay) => {
    const objects = overlays[overlay as keyof typeof overlays];
    const problems: string[] = [];
    for (const object of objects) {
      try {
        new (await modelOf(object))(decodable(object)).validate();
      } catch (error) {
        problems.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
    expect(objects.length).toBeGreaterThan(10);
  });

  it.each(Object.keys(overlays))(
    '%s: probes, non-root, read-only root, limits, no secret in env, no admin port in a Service',
    (overlay) => {
      const objects = overlays[overlay as keyof typeof overlays];
      const problems: string[] = [];
      for (const workload of workloads(objects)) {
        const pod = workload.spec.template.spec;
        const where = `${workload.kind}/${workload.metadata.name}`;
        if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${where}: not runAsNonRoot`);
        if (pod.automountServiceAccountToken !== false) problems.push(`${where}: mounts a service account token`);
        for (const container of pod.containers) {
          const at = `${where}/${container.name}`;
          for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
            if (!container[probe]) problems.push(`${at}: no ${probe}`);
          }
          if (container.securityContext?.readOnlyRootFilesystem !== true) problems.push(`${at}: writable root`);
          if (container.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${at}: may escalate`);
          if (!container.resources?.limits?.cpu || !container.resources.limits.memory)
            problems.push(`${at}: no limits`);
          if ((container.envFrom ?? []).some((source) => 'secretRef' in source)) problems.push(`${at}: envFrom secret`);
          for (const variable of container.env ?? []) {
            if (variable.valueFrom && 'secretKeyRef' in variable.valueFrom)
              problems.push(`${at}: ${variable.name} from a secret`);
            if (/SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL/.test(variable.name) && !variable.name.endsWith('_FILE')) {
              problems.push(`${at}: ${variable.name} looks like a secret in env`);
            }
          }
        }
      }
      for (const service of objects.filter((object) => object.kind === 'Service')) {
        const ports = (service.spec as { ports: { port: number; targetPort?: number | string; name?: string }[] })
          .ports;
        for (const port of ports) {
          if ([port.port, port.targetPort, port.name].some((value) => ADMIN_PORTS.has(value as number | string))) {
            problems.push(`Service/${service.metadata.name} exposes the admin port`);
          }
        }
      }
      expect(problems).toEqual([]);
    },
  );

  it.each(Object.keys(overlays))(
    '%s: a NetworkPolicy for each service, admin ports closed to the outside',
    (overlay) => {
      const objects = overlays[overlay as keyof typeof overlays];
      for (const product of ['kms', 'identity']) {
        const policy = named(objects, 'NetworkPolicy', product) as
          (K8sObject & { spec: { policyTypes: string[]; ingress: { ports: { port: number }[] }[] } }) | undefined;
        expect(policy?.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
        const open = policy!.spec.ingress.flatMap((rule) => rule.ports.map((port) => port.port));
        expect(open).toEqual([product === 'kms' ? 8081 : 8082]);
      }
      // Only the KMS may call Identity (JWKS, introspection): Identity opens no egress to the KMS.
      const kms = named(objects, 'NetworkPolicy', 'kms') as K8sObject & { spec: { egress: { to?: unknown[] }[] } };
      expect(JSON.stringify(kms.spec.egress)).toContain('"app.kubernetes.io/name":"identity"');
    },
  );

  it('demo: one replica each with demo data on bundled PostgreSQL; prod: three each, no Secret in the render', () => {
    const demo = overlays.demo;
    expect(workloads(demo).map((workload) => [workload.metadata.name, workload.spec.replicas])).toEqual(
      expect.arrayContaining([
        ['kms', 1],
        ['identity', 1],
        ['kms-postgres', 1],
        ['identity-postgres', 1],
      ]),
    );
    expect(demo.some((object) => object.kind === 'HorizontalPodAutoscaler')).toBe(false);
    for (const name of ['kms', 'identity']) {
      const args = (named(demo, 'Deployment', name) as Workload).spec.template.spec.containers[0]!.args;
      expect(args).toContain('--demo');
    }
    // Every Secret a pod mounts is in the render, except the TLS ones `pnpm k8s:tls` makes.
    const rendered = new Set(demo.filter((object) => object.kind === 'Secret').map((object) => object.metadata.name));
    const missing = workloads(demo)
      .flatMap(secretsMounted)
      .filter((name) => !rendered.has(name));
    expect([...new Set(missing)].sort()).toEqual(TLS_SECRETS);

    const prod = overlays.prod;
    expect(workloads(prod).map((workload) => [workload.metadata.name, workload.spec.replicas])).toEqual([
      ['identity', 3],
      ['kms', 3],
    ]);
    expect(prod.filter((object) => object.kind === 'Secret')).toEqual([]);
    for (const hpa of prod.filter((object) => object.kind === 'HorizontalPodAutoscaler')) {
      expect((hpa.spec as { minReplicas: number }).minReplicas).toBe(3);
    }
    expect(prod.every((object) => object.kind === 'Namespace' || object.metadata.namespace === 'cryptoutil')).toBe(
      true,
    );
  });

  it('prod-cert-manager: cert-manager issues exactly the TLS Secrets the pods mount', () => {
    const objects = overlays['prod-cert-manager'];
    const issued = objects
      .filter((object) => object.kind === 'Certificate')
      .map((object) => (object.spec as { secretName: string }).secretName)
      .sort();
    expect(issued).toEqual(TLS_SECRETS);
    const mounted = workloads(objects)
      .flatMap(secretsMounted)
      .filter((name) => name.endsWith('-tls'));
    expect([...new Set(mounted)].sort()).toEqual(TLS_SECRETS);
  });

  it('makes its config maps from the compose config files, and every --config names one of their keys', async () => {
    for (const [product, files] of [
      ['kms', ['kms.yml', 'kms-postgres.yml', 'kms-integration.yml', 'realms.yml']],
      ['identity', ['identity.yml', 'identity-postgres.yml']],
    ] as const) {
      const map = named(overlays.prod, 'ConfigMap', `${product}-config`) as K8sObject & {
        data: Record<string, string>;
      };
      for (const file of files) {
        expect(map.data[file]).toBe(await readFile(join(ROOT, 'deployments', product, 'config', file), 'utf8'));
      }
      const args =
        (named(overlays.prod, 'Deployment', product) as Workload).spec.template.spec.containers[0]!.args ?? [];
      const configs = args.filter((_, index) => args[index - 1] === '--config');
      expect(configs.length).toBeGreaterThan(1);
      for (const config of configs) expect(Object.keys(map.data)).toContain(config.replace('/etc/cryptoutil/', ''));
    }
  });
});

describe('pnpm k8s:tls', () => {
  it('prints TLS Secrets that, mounted as the Deployments mount them, serve TLS and pass the KMS probe', async () => {
    const store = await mkdtemp(join(tmpdir(), 'k8s-tls-'));
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'tools/dist/k8s-tls.js'), '--namespace', 'tls-test', '--dir', store, '--cert-manager'],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(0);
    const secrets = parseAllDocuments(run.stdout).map(
      (document) => document.toJS() as K8sObject & { type: string; data: Record<string, string> },
    );
    expect(secrets.map((secret) => secret.metadata.name)).toEqual([
      ...['kms-tls', 'identity-tls', 'healthcheck-tls'],
      'cryptoutil-ca',
    ]);
    for (const secret of secrets) {
      new (await modelOf(secret))(secret).validate();
      expect([secret.type, secret.metadata.namespace, Object.keys(secret.data).sort()]).toEqual([
        'kubernetes.io/tls',
        'tls-test',
        ['ca.crt', 'tls.crt', 'tls.key'],
      ]);
    }
    // The KMS's projected `tls` volume: ca.crt → root-ca.pem, tls.crt/tls.key → <leaf>/cert.pem, key.pem.
    const mounted = await mkdtemp(join(tmpdir(), 'k8s-tls-mounted-'));
    const place = async (path: string, base64: string) => {
      await mkdir(dirname(join(mounted, path)), { recursive: true });
      await writeFile(join(mounted, path), Buffer.from(base64, 'base64'));
    };
    const [kms, , probe] = secrets;
    await place('root-ca.pem', kms!.data['ca.crt']!);
    await place('kms/cert.pem', kms!.data['tls.crt']!);
    await place('kms/key.pem', kms!.data['tls.key']!);
    await place('healthcheck/cert.pem', probe!.data['tls.crt']!);
    await place('healthcheck/key.pem', probe!.data['tls.key']!);

    const pair = await createListenerPair(
      {
        tlsDir: mounted,
        leafName: 'kms',
        commonName: 'unused',
        subjectAltNames: [],
        adminClientCertificates: 'require',
      },
      (_req, res) => res.end('ok'),
      (_req, res) => res.end('ok'),
    );
    const port = await listen(pair.adminServer, '127.0.0.1', 0);
    try {
      // The probe command itself (the server runs in this process, so not spawnSync).
      const check = await execFileAsync(process.execPath, [
        join(ROOT, 'packages/tls/dist/healthcheck.js'),
        `https://127.0.0.1:${port}/admin/v1/livez`,
        mounted,
      ]);
      expect(check.stderr).toBe('');
    } finally {
      await Promise.all([closeServer(pair.publicServer), closeServer(pair.adminServer)]);
    }
    // Run again: the same CA and certificates (kept in --dir).
    const again = spawnSync(
      process.execPath,
      [join(ROOT, 'tools/dist/k8s-tls.js'), '--namespace', 'tls-test', '--dir', store],
      { encoding: 'utf8' },
    );
    expect(again.stdout).toBe(run.stdout.slice(0, again.stdout.length));
  });
});
