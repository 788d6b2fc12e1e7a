import { createServer, type Server } from 'node:net';
import { testPorts } from './test-ports.js';

const worker = Math.max(Number(process.env.JEST_WORKER_ID ?? '1'), 1);
const first = 20_000 + ((worker - 1) % 12) * 1_000;

const hold = (port: number) =>
  new Promise<Server>((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done(server));
  });

describe('testPorts', () => {
  it("hands out distinct ports from this worker's block, below the kernel's ephemeral range", async () => {
    const ports = [...(await testPorts(5)), ...(await testPorts(5)), ...(await testPorts(5))];
    expect(new Set(ports).size).toBe(15);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(first);
      expect(port).toBeLessThan(Math.min(first + 1_000, 32_768));
    }
  });

  it('skips ports something already listens on', async () => {
    const [before] = await testPorts(1);
    // The next two ports in turn (the block wraps after its last port).
    const taken = [1, 2].map((step) => first + (((before as number) - first + step) % 1_000));
    const servers = await Promise.all(taken.map(hold));
    try {
      const [after] = await testPorts(1);
      expect(taken).not.toContain(after);
      expect(after).toBe(first + (((before as number) - first + 3) % 1_000));
    } finally {
      await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
    }
  });
});
