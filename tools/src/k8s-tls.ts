/**
 * `pnpm k8s:tls [--namespace cryptoutil] [--dir .data/k8s-tls/<namespace>] [--cert-manager]`: prints the
 * TLS Secrets the Kubernetes deployment mounts (deployments/k8s), issued by the project CA
 * (packages/tls: root → policy → issuing CA → leaf), ready for `kubectl apply -f -`:
 *   kms-tls, identity-tls   server and client leaves named for the Services in the namespace
 *   healthcheck-tls         the client certificate the KMS's probes present to its admin listener
 *   cryptoutil-ca           with --cert-manager only: the issuing CA and its key, for a cert-manager CA Issuer
 * Each is a `kubernetes.io/tls` Secret with `tls.crt` (leaf first, then the CAs below the root), `tls.key` and
 * `ca.crt` (the root). The CA and leaves are kept in --dir, so running it again prints the same certificates.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { assertValidFqdn, loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';
import { ROOT } from './demo/services.js';

interface TlsSecret {
  name: string;
  chainPem: string;
  keyPem: string;
}

/** A `kubernetes.io/tls` Secret as a manifest object. */
export function tlsSecret(namespace: string, secret: TlsSecret, rootPem: string): Record<string, unknown> {
  const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: secret.name, namespace, labels: { 'app.kubernetes.io/part-of': 'cryptoutil' } },
    data: { 'tls.crt': base64(secret.chainPem), 'tls.key': base64(secret.keyPem), 'ca.crt': base64(rootPem) },
  };
}

/** The names a Service is reached by inside the cluster, and on the pod itself (probes). */
const serviceNames = (service: string, namespace: string) => [
  service,
  `${service}.${namespace}.svc`,
  `${service}.${namespace}.svc.cluster.local`,
  'localhost',
  '127.0.0.1',
];

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== '--'),
    options: {
      namespace: { type: 'string', default: 'cryptoutil' },
      dir: { type: 'string' },
      'cert-manager': { type: 'boolean', default: false },
    },
  });
  const namespace = values.namespace;
  assertValidFqdn(namespace);
  const dir = values.dir ?? join(ROOT, '.data', 'k8s-tls', namespace);
  const ca = await loadOrCreateCa(dir);
  const secrets: TlsSecret[] = [];
  for (const service of ['kms', 'identity']) {
    const leaf = await loadOrIssueLeaf(dir, service, ca, {
      commonName: service,
      usage: 'both',
      subjectAltNames: serviceNames(service, namespace),
    });
    secrets.push({ name: `${service}-tls`, ...leaf });
  }
  const probe = await loadOrIssueLeaf(dir, 'healthcheck', ca, { commonName: 'healthcheck', usage: 'client' });
  secrets.push({ name: 'healthcheck-tls', ...probe });
  if (values['cert-manager']) {
    secrets.push({
      name: 'cryptoutil-ca',
      chainPem: await readFile(join(dir, 'issuing-ca', 'chain.pem'), 'utf8'),
      keyPem: await readFile(join(dir, 'issuing-ca', 'key.pem'), 'utf8'),
    });
  }
  const documents = secrets.map((secret) => stringify(tlsSecret(namespace, secret, ca.rootPem)));
  process.stdout.write(documents.join('---\n'));
  process.stderr.write(`k8s:tls: ${secrets.length} Secrets for namespace ${namespace}; CA kept in ${dir}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`k8s:tls: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
