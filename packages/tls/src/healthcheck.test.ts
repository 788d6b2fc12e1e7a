import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { checkHealth } from './healthcheck.js';
import { loadOrCreateCa, loadOrIssueLeaf } from './store.js';
import { serverTlsOptions } from './tls-options.js';

/** An admin-like listener: client certificate from the CA required, answers `status`. */
async function adminServer(dir: string, status: number) {
  const ca = await loadOrCreateCa(dir);
  const leaf = await loadOrIssueLeaf(dir, 'server', ca, { commonName: 'localhost', usage: 'server' });
  const seen: string[] = [];
  const server = https.createServer(
    serverTlsOptions({ chain: leaf.chainPem, key: leaf.keyPem, rootCa: ca.rootPem, requireClientCert: true }),
    (req, res) => {
      seen.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
      res.writeHead(status).end();
    },
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, seen, url: `https://localhost:${(server.address() as AddressInfo).port}/admin/v1/livez` };
}

describe('the container health check', () => {
  it('calls the admin listener with a healthcheck client certificate from the CA, verifying the server', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'healthcheck-'));
    const admin = await adminServer(dir, 200);
    try {
      expect(await checkHealth(admin.url, dir)).toBe(200);
      expect(admin.seen).toEqual(['healthcheck']);
      // Another CA's directory does not trust this server: the check fails instead of skipping verification.
      const stranger = await mkdtemp(join(tmpdir(), 'healthcheck-other-'));
      await loadOrCreateCa(stranger);
      await expect(checkHealth(admin.url, stranger)).rejects.toThrow();
    } finally {
      admin.server.close();
    }
  });

  it('uses a client certificate the deployment provided, without a CA key and without writing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'healthcheck-'));
    const admin = await adminServer(dir, 200);
    const ca = await loadOrCreateCa(dir);
    await loadOrIssueLeaf(dir, 'healthcheck', ca, { commonName: 'healthcheck', usage: 'client' });
    // What a Kubernetes Secret mounts: the root and the healthcheck client's certificate and key only.
    const mounted = await mkdtemp(join(tmpdir(), 'healthcheck-mounted-'));
    await cp(join(dir, 'root-ca.pem'), join(mounted, 'root-ca.pem'));
    await cp(join(dir, 'healthcheck'), join(mounted, 'healthcheck'), { recursive: true });
    const before = (await readdir(mounted, { recursive: true })).sort();
    try {
      expect(await checkHealth(admin.url, mounted)).toBe(200);
      expect(admin.seen).toEqual(['healthcheck']);
    } finally {
      admin.server.close();
    }
    expect((await readdir(mounted, { recursive: true })).sort()).toEqual(before);
  });

  it('reports other answers, and refuses to run without a CA instead of creating one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'healthcheck-'));
    const admin = await adminServer(dir, 503);
    try {
      expect(await checkHealth(admin.url, dir)).toBe(503);
    } finally {
      admin.server.close();
    }
    const empty = await mkdtemp(join(tmpdir(), 'healthcheck-empty-'));
    await expect(checkHealth('https://localhost:1/', empty)).rejects.toThrow(/no CA/);
    const usage = spawnSync(process.execPath, [join(import.meta.dirname ?? '.', '../dist/healthcheck.js')]);
    expect(usage.status).toBe(2);
  });
});
