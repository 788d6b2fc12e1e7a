import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  CaOptionsError,
  InsecureTlsOptionsError,
  InvalidNameError,
  TlsStoreError,
  clientTlsOptions,
  createCaHierarchy,
  isValidFqdn,
  issueLeaf,
  loadOrCreateCa,
  loadOrIssueLeaf,
  serverTlsOptions,
  validateTlsOptions,
  type StoredCa,
  type StoredLeaf,
} from './index.js';

let dir: string;
let ca: StoredCa;
let server: StoredLeaf;
let client: StoredLeaf;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tls-test-'));
  ca = await loadOrCreateCa(join(dir, 'tls'));
  server = await loadOrIssueLeaf(join(dir, 'tls'), 'kms', ca, {
    commonName: 'kms.cryptoutil.demo.local',
    usage: 'server',
  });
  client = await loadOrIssueLeaf(join(dir, 'tls'), 'kms-client', ca, {
    commonName: 'client.cryptoutil.demo.local',
    usage: 'client',
  });
});

function openssl(args: string[], input = ''): { status: number | null; output: string } {
  const result = spawnSync('openssl', args, { input, timeout: 10_000, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Asynchronous, so that the in-process server under test can answer while openssl runs. */
function opensslAsync(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (status) => resolve({ status, output }));
    child.stdin.end();
  });
}

describe('CA hierarchy', () => {
  it('chains root → policy → issuing → leaf and verifies with openssl', async () => {
    expect(ca.chain).toHaveLength(3);
    const certs = server.chainPem.match(/-----BEGIN CERTIFICATE-----/g);
    expect(certs).toHaveLength(3); // leaf + issuing + policy; the root is trusted separately
    const leafPath = join(dir, 'leaf.pem');
    const intermediatesPath = join(dir, 'intermediates.pem');
    const [leafPem, ...intermediates] = server.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/);
    await writeFile(leafPath, leafPem!);
    await writeFile(intermediatesPath, intermediates.join(''));
    const result = openssl(['verify', '-CAfile', ca.rootPath, '-untrusted', intermediatesPath, leafPath]);
    expect(result.output).toContain(': OK');
    expect(result.status).toBe(0);
  });

  it('never makes a self-signed leaf and sets pathLen per CA', async () => {
    const text = execFileSync(
      'openssl',
      ['x509', '-noout', '-nameopt', 'RFC2253', '-subject', '-issuer', '-ext', 'extendedKeyUsage'],
      {
        input: server.chainPem,
        encoding: 'utf8',
      },
    );
    expect(text).toContain('subject=CN=kms.cryptoutil.demo.local');
    expect(text).toContain('issuer=CN=issuing-ca.cryptoutil.demo.local');
    expect(text).toContain('TLS Web Server Authentication');
    const pathLens = ca.chain.map((cert) =>
      execFileSync('openssl', ['x509', '-noout', '-ext', 'basicConstraints'], {
        input: cert.toString('pem'),
        encoding: 'utf8',
      }),
    );
    expect(pathLens[0]).toContain('pathlen:0');
    expect(pathLens[1]).toContain('pathlen:1');
    expect(pathLens[2]).toContain('pathlen:2');
  });

  it('accepts chain lengths 1 and 5 and other curves, refuses 0 and 6', async () => {
    expect((await createCaHierarchy({ chainLength: 1 })).chain).toHaveLength(1);
    const five = await createCaHierarchy({ chainLength: 5, curve: 'P-384' });
    expect(five.chain).toHaveLength(5);
    expect(five.chain[0]!.signatureAlgorithm.hash.name).toBe('SHA-384');
    await expect(createCaHierarchy({ chainLength: 0 })).rejects.toBeInstanceOf(CaOptionsError);
    await expect(createCaHierarchy({ chainLength: 6 })).rejects.toBeInstanceOf(CaOptionsError);
    await expect(createCaHierarchy({ validityDays: 30 * 365 })).rejects.toBeInstanceOf(CaOptionsError);
    await expect(createCaHierarchy({ namePrefix: 'bad_name!' })).rejects.toBeInstanceOf(InvalidNameError);
  });

  it('refuses leaves valid for more than 397 days and invalid names', async () => {
    await expect(issueLeaf(ca, { commonName: 'a.example', usage: 'server', validityDays: 398 })).rejects.toBeInstanceOf(
      CaOptionsError,
    );
    await expect(issueLeaf(ca, { commonName: 'bad_name!', usage: 'server' })).rejects.toBeInstanceOf(InvalidNameError);
  });

  it.each([
    ['kms.cryptoutil.demo.local', true],
    ['localhost', true],
    ['a'.repeat(63) + '.example', true],
    ['a'.repeat(64) + '.example', false],
    [`${'a.'.repeat(127)}ab`, false],
    ['-leading.example', false],
    ['trailing-.example', false],
    ['under_score.example', false],
    ['', false],
  ])('validates DNS name %s → %s', (name, valid) => {
    expect(isValidFqdn(name)).toBe(valid);
  });
});

describe('store', () => {
  it('writes keys 0600 and certificates 0644, and reuses them on the next start', async () => {
    expect((await stat(server.keyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(server.certPath)).mode & 0o777).toBe(0o644);
    expect((await stat(ca.rootPath)).mode & 0o777).toBe(0o644);
    expect((await stat(join(dir, 'tls', 'issuing-ca', 'key.pem'))).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateCa(join(dir, 'tls'));
    expect(again.rootPem).toBe(ca.rootPem);
    const leafAgain = await loadOrIssueLeaf(join(dir, 'tls'), 'kms', again, {
      commonName: 'x.example',
      usage: 'server',
    });
    expect(leafAgain.chainPem).toBe(server.chainPem);
    // A reloaded issuing CA still issues leaves that chain to the same root.
    const fresh = await issueLeaf(again, { commonName: 'fresh.example', usage: 'server' });
    expect(fresh.certificate.issuer).toBe(ca.chain[0]!.subject);
  });

  it('refuses a half-present CA instead of regenerating', async () => {
    const partial = await mkdtemp(join(tmpdir(), 'tls-partial-'));
    await writeFile(join(partial, 'root-ca.pem'), await readFile(ca.rootPath));
    await expect(loadOrCreateCa(partial)).rejects.toBeInstanceOf(TlsStoreError);
  });
});

describe('TLS 1.3 only, trusting only the root', () => {
  let httpsServer: https.Server;
  let mtlsServer: https.Server;
  let port: number;
  let mtlsPort: number;

  beforeAll(async () => {
    const handler: https.RequestListener = (_req, res) => res.end('hello');
    httpsServer = https.createServer(
      serverTlsOptions({ chain: server.chainPem, key: server.keyPem, rootCa: ca.rootPem }),
      handler,
    );
    mtlsServer = https.createServer(
      serverTlsOptions({ chain: server.chainPem, key: server.keyPem, rootCa: ca.rootPem, requireClientCert: true }),
      handler,
    );
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => mtlsServer.listen(0, '127.0.0.1', resolve));
    port = (httpsServer.address() as AddressInfo).port;
    mtlsPort = (mtlsServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    httpsServer.closeAllConnections();
    mtlsServer.closeAllConnections();
    await new Promise((resolve) => httpsServer.close(resolve));
    await new Promise((resolve) => mtlsServer.close(resolve));
  });

  function get(targetPort: number, options: https.RequestOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const request = https.get({ host: '127.0.0.1', port: targetPort, path: '/', agent: false, ...options }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      });
      request.on('error', reject);
    });
  }

  it('serves a TLS 1.3 client that trusts the root', async () => {
    await expect(get(port, clientTlsOptions({ rootCa: ca.rootPem }))).resolves.toBe('hello');
  });

  it('refuses a TLS 1.2 client', async () => {
    await expect(get(port, { ca: [ca.rootPem], maxVersion: 'TLSv1.2' })).rejects.toThrow();
  });

  it('is refused by a client that trusts a different root', async () => {
    const other = await createCaHierarchy();
    await expect(get(port, clientTlsOptions({ rootCa: other.root.toString('pem') }))).rejects.toThrow(
      /certificate|verify/i,
    );
  });

  it('requires a client certificate from the CA when mTLS is on', async () => {
    await expect(get(mtlsPort, clientTlsOptions({ rootCa: ca.rootPem }))).rejects.toThrow();
    const options = clientTlsOptions({ rootCa: ca.rootPem, cert: client.chainPem, key: client.keyPem });
    await expect(get(mtlsPort, options)).resolves.toBe('hello');
  });

  it('asks for but does not require a client certificate in request mode, and marks who is verified', async () => {
    const optional = https.createServer(
      serverTlsOptions({ chain: server.chainPem, key: server.keyPem, rootCa: ca.rootPem, requestClientCert: true }),
      (req, res) => {
        const socket = req.socket as tls.TLSSocket;
        res.end(socket.authorized ? `verified ${String(socket.getPeerCertificate().subject.CN)}` : 'anonymous');
      },
    );
    await new Promise<void>((resolve) => optional.listen(0, '127.0.0.1', resolve));
    const optionalPort = (optional.address() as AddressInfo).port;
    try {
      await expect(get(optionalPort, clientTlsOptions({ rootCa: ca.rootPem }))).resolves.toBe('anonymous');
      const withCert = clientTlsOptions({ rootCa: ca.rootPem, cert: client.chainPem, key: client.keyPem });
      await expect(get(optionalPort, withCert)).resolves.toBe('verified client.cryptoutil.demo.local');
      const stranger = await issueLeaf(await createCaHierarchy(), { commonName: 'stranger', usage: 'client' });
      const foreign = clientTlsOptions({ rootCa: ca.rootPem, cert: stranger.chainPem, key: stranger.keyPem });
      await expect(get(optionalPort, foreign)).resolves.toBe('anonymous');
    } finally {
      optional.closeAllConnections();
      await new Promise((resolve) => optional.close(resolve));
    }
  });

  it('passes openssl s_client with -tls1_3 and fails with -tls1_2', async () => {
    const target = `127.0.0.1:${port}`;
    const ok = await opensslAsync([
      's_client',
      '-connect',
      target,
      '-tls1_3',
      '-CAfile',
      ca.rootPath,
      '-verify_return_error',
      '-brief',
    ]);
    expect(ok.output).toMatch(/Verification: OK/);
    const old = await opensslAsync(['s_client', '-connect', target, '-tls1_2', '-CAfile', ca.rootPath, '-brief']);
    expect(old.status).not.toBe(0);
  });

  it('has options that are TLS 1.3 only and refuses anything lower', () => {
    expect(tls.DEFAULT_MIN_VERSION).toBeDefined();
    expect(() => validateTlsOptions(clientTlsOptions({ rootCa: ca.rootPem }))).not.toThrow();
    expect(() => validateTlsOptions({ minVersion: 'TLSv1.2' })).toThrow(InsecureTlsOptionsError);
    expect(() => validateTlsOptions({})).toThrow(InsecureTlsOptionsError);
  });
});
