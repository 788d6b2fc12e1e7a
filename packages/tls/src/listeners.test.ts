import { describe, expect, it } from '@jest/globals';
import { cp, mkdtemp, readdir } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, createListenerPair, isLoopback, listen, urlHost } from './listeners.js';
import { loadOrCreateCa, loadOrIssueLeaf } from './store.js';
import { clientTlsOptions } from './tls-options.js';

const hello = (_req: unknown, res: { end: (text: string) => void }) => res.end('hello');

function get(port: number, options: https.RequestOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('listener pair', () => {
  it('serves both listeners with one CA leaf, the admin one requiring a client certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'listeners-'));
    const pair = await createListenerPair(
      {
        tlsDir: dir,
        leafName: 'svc',
        commonName: 'svc.example',
        subjectAltNames: ['127.0.0.1'],
        publicClientCertificates: 'request',
        adminClientCertificates: 'require',
      },
      hello,
      hello,
    );
    expect(pair.scheme).toBe('https');
    const publicPort = await listen(pair.publicServer, '127.0.0.1', 0);
    const adminPort = await listen(pair.adminServer, '127.0.0.1', 0);
    try {
      await expect(get(publicPort, clientTlsOptions({ rootCa: pair.rootCaPem }))).resolves.toBe('hello');
      await expect(get(adminPort, clientTlsOptions({ rootCa: pair.rootCaPem }))).rejects.toThrow();
    } finally {
      await Promise.all([closeServer(pair.publicServer), closeServer(pair.adminServer)]);
    }
    const plain = await createListenerPair(
      { tlsDir: dir, leafName: 'svc', commonName: 'svc.example', subjectAltNames: [], insecureHttp: true },
      hello,
      hello,
    );
    expect(plain.scheme).toBe('http');
    await expect(listen(plain.publicServer, '127.0.0.1', -1)).rejects.toThrow(); // a bind error is a rejection
  });

  it('serves a leaf the deployment provided (root and leaf, no CA key) and writes nothing', async () => {
    // What a Kubernetes Secret mounts: root-ca.pem and svc/{cert,key}.pem, issued elsewhere.
    const issuer = await mkdtemp(join(tmpdir(), 'listeners-ca-'));
    const ca = await loadOrCreateCa(issuer);
    await loadOrIssueLeaf(issuer, 'svc', ca, {
      commonName: 'svc.example',
      usage: 'both',
      subjectAltNames: ['127.0.0.1'],
    });
    const mounted = await mkdtemp(join(tmpdir(), 'listeners-mounted-'));
    await cp(join(issuer, 'root-ca.pem'), join(mounted, 'root-ca.pem'));
    await cp(join(issuer, 'svc'), join(mounted, 'svc'), { recursive: true });
    const before = await readdir(mounted, { recursive: true });

    const pair = await createListenerPair(
      { tlsDir: mounted, leafName: 'svc', commonName: 'ignored', subjectAltNames: [] },
      hello,
      hello,
    );
    expect(pair.rootCaPem).toBe(ca.rootPem);
    const port = await listen(pair.publicServer, '127.0.0.1', 0);
    try {
      await expect(get(port, clientTlsOptions({ rootCa: ca.rootPem }))).resolves.toBe('hello');
    } finally {
      await Promise.all([closeServer(pair.publicServer), closeServer(pair.adminServer)]);
    }
    expect((await readdir(mounted, { recursive: true })).sort()).toEqual(before.sort());
  });

  it('knows loopback hosts and writes IPv6 hosts in brackets', () => {
    expect([isLoopback('127.0.0.1'), isLoopback('::1'), isLoopback('0.0.0.0')]).toEqual([true, true, false]);
    expect([urlHost('::1'), urlHost('127.0.0.1')]).toEqual(['[::1]', '127.0.0.1']);
  });
});
