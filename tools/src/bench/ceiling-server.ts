/**
 * A child process serving one ceiling scenario over TLS 1.3 on a loopback port: `bare-https` (a
 * `node:https` handler, no framework: the new-connection ceiling), `bare-express` (no middleware: the
 * keep-alive ceiling), `infra-defaults` (express + the shared security defaults and problem handler, on the products' TLS read
 * path).
 * It tells the parent its port and root CA over IPC. Run by `bench.ts`, never directly.
 */
import express from 'express';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { applySecurityDefaults, notFoundHandler, problemHandler } from '@cryptoutil/infra';
import { createCaHierarchy, issueLeaf, readTlsInJavaScript, serverTlsOptions } from '@cryptoutil/tls';

export type CeilingScenario = 'bare-https' | 'bare-express' | 'infra-defaults';

function app(scenario: CeilingScenario): express.Express {
  const server = express();
  if (scenario === 'infra-defaults') applySecurityDefaults(server, { rawTypes: ['application/jose'] });
  server.post('/echo', (_req, res) => {
    res.json({ ok: true });
  });
  if (scenario === 'infra-defaults') server.use(notFoundHandler(), problemHandler());
  return server;
}

async function main(): Promise<void> {
  const scenario = process.argv[2] as CeilingScenario;
  const ca = await createCaHierarchy();
  const leaf = await issueLeaf(ca, { commonName: 'localhost', usage: 'server' });
  const rootPem = ca.root.toString('pem');
  const tls = serverTlsOptions({ chain: leaf.chainPem, key: leaf.keyPem, rootCa: rootPem });
  const server =
    scenario === 'bare-https'
      ? https.createServer(tls, (req, res) => {
          req.resume();
          req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
        })
      : scenario === 'infra-defaults'
        ? readTlsInJavaScript(https.createServer(tls, app(scenario))) // as the products' listeners
        : https.createServer(tls, app(scenario));
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port, rootPem });
  });
  process.on('disconnect', () => process.exit(0));
}

void main();
