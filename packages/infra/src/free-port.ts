/**
 * TCP ports on 127.0.0.1 that nothing listens on right now, for processes started with fixed ports.
 *
 * All `count` ports are held open at once before any is released, so one call never hands out the same
 * port twice (the kernel may give a port it just released to the next `listen(0)`).
 */
import { createServer, type Server } from 'node:net';

export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let n = 0; n < count; n++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((done, fail) => {
        server.once('error', fail);
        server.listen(0, '127.0.0.1', done);
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  }
}
