/**
 * A keep-alive HTTPS client for tests that send thousands of requests to a test KMS: supertest opens a
 * new TLS connection per request, which would make those tests slow without testing anything more.
 */
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import type { TestKms } from './harness.js';
import { testTls } from './harness.js';

export interface Answer {
  status: number;
  text: string;
  /** The problem code of an error answer (problem+json), else undefined. */
  code: string | undefined;
}

export interface KeepAliveClient {
  post(path: string, body: string): Promise<Answer>;
  close(): Promise<void>;
}

export async function keepAliveClient(kms: TestKms, connections = 8): Promise<KeepAliveClient> {
  const server: https.Server = kms.publicServer;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const { rootPem } = await testTls();
  const pool = new Pool(`https://127.0.0.1:${port}`, {
    connect: { ca: rootPem, servername: 'localhost' },
    connections,
  });
  return {
    async post(path, body) {
      const res = await pool.request({
        method: 'POST',
        path: `/service/api/v1${path}`,
        headers: { 'content-type': 'text/plain' },
        body,
      });
      const text = await res.body.text();
      const problem = String(res.headers['content-type'] ?? '').startsWith('application/problem+json');
      return { status: res.statusCode, text, code: problem ? (JSON.parse(text) as { code: string }).code : undefined };
    },
    async close() {
      await pool.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `work` over `items` with at most `limit` at a time; results in input order. */
export async function inBatches<T, U>(items: readonly T[], limit: number, work: (item: T) => Promise<U>): Promise<U[]> {
  const results: U[] = new Array<U>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}
