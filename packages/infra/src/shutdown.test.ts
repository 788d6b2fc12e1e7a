import express from 'express';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from './logger.js';
import { createShutdown, drainServer, type SignalSource } from './shutdown.js';

const logger = createLogger({ service: 'test', silent: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startServer(
  handlerDelayMs: number,
): Promise<{ server: http.Server; url: string; started: Promise<void> }> {
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const app = express();
  app.get('/work', (_req, res) => {
    markStarted();
    setTimeout(() => res.json({ done: true }), handlerDelayMs).unref();
  });
  app.get('/quick', (_req, res) => {
    res.json({ quick: true });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, started };
}

function signalSource(): SignalSource & EventEmitter {
  return new EventEmitter() as SignalSource & EventEmitter;
}

describe('createShutdown', () => {
  it('lets an in-flight request finish, refuses new connections, then runs hooks in reverse order', async () => {
    const { server, url, started } = await startServer(200);
    const events: string[] = [];
    const shutdown = createShutdown({ logger, signals: signalSource(), exit: () => events.push('exit') });
    shutdown.addServer(server);
    shutdown.addHook('database', () => void events.push('database closed'));
    shutdown.addHook('telemetry', async () => {
      await sleep(5);
      events.push('telemetry flushed');
    });

    const inFlight = fetch(`${url}/work`).then(async (res) => {
      events.push(`response ${res.status}`);
      return (await res.json()) as unknown;
    });
    await started;
    expect(shutdown.shuttingDown).toBe(false);
    const done = shutdown.shutdown('test').then((clean) => {
      events.push('shutdown resolved');
      return clean;
    });
    expect(shutdown.shuttingDown).toBe(true);
    await sleep(20);
    await expect(fetch(`${url}/quick`)).rejects.toThrow();

    expect(await inFlight).toEqual({ done: true });
    expect(await done).toBe(true);
    expect(events).toEqual(['response 200', 'telemetry flushed', 'database closed', 'shutdown resolved']);
    expect(server.listening).toBe(false);
    expect(shutdown.shutdown()).toBe(shutdown.shutdown());
    shutdown.dispose();
  });

  it('closes idle keep-alive connections without waiting for their timeout', async () => {
    const { server, url } = await startServer(0);
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get(`${url}/quick`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
    const shutdown = createShutdown({ logger, signals: signalSource(), exit: () => undefined, drainTimeoutMs: 5000 });
    shutdown.addServer(server);
    const began = Date.now();
    expect(await shutdown.shutdown()).toBe(true);
    expect(Date.now() - began).toBeLessThan(1000);
    agent.destroy();
    shutdown.dispose();
  });

  it('cuts requests still running at the drain timeout and reports an unclean shutdown', async () => {
    const { server, url, started } = await startServer(10_000);
    const shutdown = createShutdown({ logger, signals: signalSource(), exit: () => undefined, drainTimeoutMs: 100 });
    shutdown.addServer(server);
    const stuck = fetch(`${url}/work`).then(
      () => 'answered',
      () => 'cut',
    );
    await started;
    expect(await shutdown.shutdown()).toBe(false);
    expect(await stuck).toBe('cut');
    shutdown.dispose();
  });

  it('exits 0 after a clean shutdown on SIGTERM; a second signal forces exit 1', async () => {
    const signals = signalSource();
    const codes: number[] = [];
    const shutdown = createShutdown({ logger, signals, exit: (code) => codes.push(code) });
    let releaseHook: () => void = () => undefined;
    shutdown.addHook('slow', () => new Promise<void>((resolve) => (releaseHook = resolve)));
    signals.emit('SIGTERM');
    await sleep(5);
    expect(shutdown.shuttingDown).toBe(true);
    signals.emit('SIGINT');
    expect(codes).toEqual([1]);
    releaseHook();
    await shutdown.shutdown();
    await sleep(5);
    expect(codes).toEqual([1, 0]);
    shutdown.dispose();
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('runs the other hooks when one fails or hangs, and exits 1', async () => {
    const codes: number[] = [];
    const ran: string[] = [];
    const shutdown = createShutdown({
      logger,
      signals: signalSource(),
      exit: (code) => codes.push(code),
      hookTimeoutMs: 50,
    });
    shutdown.addHook('first', () => void ran.push('first'));
    shutdown.addHook('hangs', () => new Promise<void>(() => undefined));
    shutdown.addHook('fails', () => {
      throw new Error('boom');
    });
    await shutdown.terminate('test');
    expect(ran).toEqual(['first']);
    expect(codes).toEqual([1]);
    shutdown.dispose();
  });

  it('uses the real process signals by default, and removes its listeners on dispose', () => {
    const before = process.listenerCount('SIGTERM');
    const shutdown = createShutdown({ logger, exit: () => undefined });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    shutdown.dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});

describe('drainServer', () => {
  it('returns at once for a server that is not listening', async () => {
    expect(await drainServer(http.createServer(), 10)).toBe(true);
  });
});
