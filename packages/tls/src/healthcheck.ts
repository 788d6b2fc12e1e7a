/**
 * The container health check (deployments/Dockerfile `HEALTHCHECK`): `node healthcheck.js <url> <tls dir>`
 * calls an admin endpoint (`/admin/v1/livez`) over TLS 1.3, trusting only the deployment's root CA and
 * presenting a `healthcheck` client certificate issued from the same CA (the admin listener requires one).
 * Never skips verification. Exit 0 when the answer is 200, 1 otherwise.
 */
import { existsSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadLeafWithRoot } from './store.js';
import { clientTlsOptions } from './tls-options.js';

export const HEALTHCHECK_CLIENT_NAME = 'healthcheck';

/** The status code of a GET of `url`, or the error that prevented one. */
export async function checkHealth(url: string, tlsDir: string, timeoutMs = 5000): Promise<number> {
  // Only an existing CA: a health check must never create one.
  if (!existsSync(join(tlsDir, 'root-ca.pem'))) throw new Error(`no CA in ${tlsDir} yet`);
  // A client certificate the deployment provided (Kubernetes Secret), else one issued from the CA.
  const client = await loadLeafWithRoot(tlsDir, HEALTHCHECK_CLIENT_NAME, {
    commonName: HEALTHCHECK_CLIENT_NAME,
    usage: 'client',
  });
  const tls = clientTlsOptions({ rootCa: client.rootPem, cert: client.chainPem, key: client.keyPem });
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function main([url, tlsDir]: string[]): Promise<number> {
  if (!url || !tlsDir) {
    process.stderr.write('usage: healthcheck <https://host:port/admin/v1/livez> <tls dir>\n');
    return 2;
  }
  try {
    const status = await checkHealth(url, tlsDir);
    if (status === 200) return 0;
    process.stderr.write(`healthcheck: ${url} answered ${status}\n`);
  } catch (error) {
    process.stderr.write(`healthcheck: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
