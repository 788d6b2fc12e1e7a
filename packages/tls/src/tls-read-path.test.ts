import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { clientTlsOptions } from './tls-options.js';

const FIXTURE = join(import.meta.dirname ?? '.', '../test/fixtures/busy-server.mjs');
const BODY = 'y'.repeat(200_000);
const REQUESTS = 200;
const CONNECTIONS = 10;

/** Starts the fixture server in a process of its own (the client must not share its event loop). */
async function startServer(mode: 'ours' | 'node-default') {
  const child = spawn(process.execPath, [FIXTURE, mode], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const [line] = await new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (text) => resolve([text]));
  });
  const { port, rootPem } = JSON.parse(line!) as { port: number; rootPem: string };
  return { port, rootPem, stop: () => child.kill() };
}

function post(agent: https.Agent, port: number, path: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** REQUESTS posts of 200 KB over CONNECTIONS keep-alive connections; how many failed, and the server's count. */
async function load(mode: 'ours' | 'node-default') {
  const server = await startServer(mode);
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: CONNECTIONS,
    ...clientTlsOptions({ rootCa: server.rootPem }),
  });
  let failed = 0;
  let sent = 0;
  try {
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (sent < REQUESTS) {
          sent++;
          const answer = await post(agent, server.port, '/', BODY).catch(() => '');
          if (answer.length !== 100_000) failed++;
        }
      }),
    );
    const clientErrors = JSON.parse(await post(agent, server.port, '/client-errors')) as Record<string, number>;
    return { failed, clientErrors };
  } finally {
    agent.destroy();
    server.stop();
  }
}

describe('TLS listeners under load', () => {
  it('keep every request on a keep-alive connection when answers are still flushing as the next body arrives', async () => {
    const ours = await load('ours');
    expect(ours).toEqual({ failed: 0, clientErrors: {} });
    // The same load on Node's default read path: Node 20 drops connections with HPE_PAUSED there, the
    // reason for readTlsInJavaScript. (Only reported on other versions, which may have fixed it.)
    const nodeDefault = await load('node-default');
    console.info('Node default TLS read path under the same load:', JSON.stringify(nodeDefault));
    if (process.versions.node.startsWith('20.')) expect(nodeDefault.clientErrors.HPE_PAUSED).toBeGreaterThan(0);
  });
});
