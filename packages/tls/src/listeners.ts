/**
 * The two listeners every service has (public and admin): HTTPS with one leaf from the project CA, or
 * plain HTTP in the explicit development mode; binding, URLs and a clean close.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { loadLeafWithRoot, loadOrCreateCa, loadProvisionedLeaf } from './store.js';
import { serverTlsOptions } from './tls-options.js';

export type ClientCertificates = 'none' | 'request' | 'require';

export interface ListenerPairOptions {
  tlsDir: string;
  /** The leaf's directory name and common name. */
  leafName: string;
  commonName: string;
  subjectAltNames: string[];
  /** Plain HTTP (development only; the caller warns). */
  insecureHttp?: boolean;
  publicClientCertificates?: ClientCertificates;
  adminClientCertificates?: ClientCertificates;
}

export interface ListenerPair {
  publicServer: http.Server;
  adminServer: http.Server;
  rootCaPem: string;
  scheme: 'http' | 'https';
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host);
}

/** `host` as it appears in a URL (IPv6 in brackets). */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

const clientCertificateOptions = (mode: ClientCertificates = 'none') => ({
  requireClientCert: mode === 'require',
  requestClientCert: mode === 'request',
});

export async function createListenerPair(
  options: ListenerPairOptions,
  publicApp: http.RequestListener,
  adminApp: http.RequestListener,
): Promise<ListenerPair> {
  if (options.insecureHttp) {
    const provisioned = await loadProvisionedLeaf(options.tlsDir, options.leafName);
    return {
      publicServer: http.createServer(publicApp),
      adminServer: http.createServer(adminApp),
      rootCaPem: provisioned?.rootPem ?? (await loadOrCreateCa(options.tlsDir)).rootPem,
      scheme: 'http',
    };
  }
  // Certificates the deployment provided (no CA key here) are used as they are; else the CA issues.
  const leaf = await loadLeafWithRoot(options.tlsDir, options.leafName, {
    commonName: options.commonName,
    usage: 'both',
    subjectAltNames: options.subjectAltNames,
  });
  const tls = { chain: leaf.chainPem, key: leaf.keyPem, rootCa: leaf.rootPem };
  return {
    publicServer: readTlsInJavaScript(
      https.createServer(
        serverTlsOptions({ ...tls, ...clientCertificateOptions(options.publicClientCertificates) }),
        publicApp,
      ),
    ),
    adminServer: readTlsInJavaScript(
      https.createServer(
        serverTlsOptions({ ...tls, ...clientCertificateOptions(options.adminClientCertificates) }),
        adminApp,
      ),
    ),
    rootCaPem: leaf.rootPem,
    scheme: 'https',
  };
}

/** Binds and resolves with the port (useful with port 0). */
export async function listen(server: http.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Keeps Node's HTTP parser on its JavaScript read path for TLS connections.
 *
 * Node lets the parser read a TLS socket's cleartext straight from the native handle. When a request arrives
 * on a keep-alive connection while the previous answer is still being flushed, Node pauses the parser and
 * stops reading the handle, but the TLS handle still hands over the records it has already decrypted, and
 * the paused parser fails them with `HPE_PAUSED`: the connection is dropped mid-request (seen in Node 20
 * under load with request bodies of about 30 KB and more after answers above 16 KB). Marking the handle as
 * taken before the HTTP listener sees the socket (Node checks `_handle._consumed` before it consumes) makes
 * Node read through the socket's stream, whose pause holds.
 */
export function readTlsInJavaScript<T extends https.Server>(server: T): T {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
    if (handle) handle._consumed = true;
  });
  return server;
}

/** Stops accepting, ends open connections, resolves when closed. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
