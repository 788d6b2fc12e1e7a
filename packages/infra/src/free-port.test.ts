import { createServer } from 'node:net';
import { freePorts } from './free-port.js';

const listenable = (port: number) =>
  new Promise<boolean>((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });

describe('freePorts', () => {
  it('never hands out one port twice in a call (the kernel reuses a just-released port now and then)', async () => {
    // Opening and closing one listener after the other repeated a port in about 1 call in 300 here.
    for (let call = 0; call < 2_000; call++) {
      const ports = await freePorts(6);
      expect(new Set(ports).size).toBe(6);
    }
  });

  it('gives ports nothing listens on once it returns', async () => {
    const ports = await freePorts(3);
    for (const port of ports) expect(await listenable(port)).toBe(true);
  });
});
