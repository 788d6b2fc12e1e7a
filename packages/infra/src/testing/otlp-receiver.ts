/** A minimal OTLP/HTTP (JSON) receiver for tests: records what exporters POST, by signal. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface OtlpReceiver {
  server: http.Server;
  /** `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  endpoint: string;
  received: { traces: unknown[]; metrics: unknown[]; logs: unknown[] };
  /** Every request path, in order. */
  paths: string[];
  /** Bodies that were not JSON (with the reason). */
  failures: string[];
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received = { traces: [] as unknown[], metrics: [] as unknown[], logs: [] as unknown[] };
  const paths: string[] = [];
  const failures: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      paths.push(req.url ?? '');
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      const signal = /\/v1\/(traces|metrics|logs)$/.exec(req.url ?? '')?.[1] as keyof typeof received | undefined;
      try {
        if (signal) received[signal].push(JSON.parse(body));
      } catch (error) {
        failures.push(`${req.url} ${String(error)}`);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    server,
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    paths,
    failures,
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}
