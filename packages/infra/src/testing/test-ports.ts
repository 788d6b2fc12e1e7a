/**
 * Fixed ports for processes a test starts, which no other test of the run can be handed at the same time.
 *
 * `listen(0)` ports come from the kernel's ephemeral range, which every outgoing connection draws from
 * too, and the kernel may hand a port it just released to the next caller: a port picked that way and
 * bound a few seconds later by a child process can meanwhile belong to another test's process or a
 * client socket. Here each Jest worker takes ports in turn from a block of its own below the ephemeral
 * range (32768 and up on Linux), skipping any that something already listens on.
 */
import { createServer } from 'node:net';

const FIRST = 20_000;
const BLOCK = 1_000;
/** Blocks 20000–31999: below Linux's default ephemeral range. */
const BLOCKS = 12;

let next = 0;

function block(): number {
  const worker = Number(process.env.JEST_WORKER_ID ?? '1');
  return FIRST + ((Math.max(worker, 1) - 1) % BLOCKS) * BLOCK;
}

function listenable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((done) => {
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/**
 * `count` ports of this worker's block, handed out in turn (one test file never gets a port twice; the next file
 * in the worker starts the turn again, after the earlier file's processes stopped) and free right now.
 */
export async function testPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < count; tried++) {
    if (tried >= BLOCK) throw new Error(`no free test port in ${block()}–${block() + BLOCK - 1}`);
    const port = block() + (next++ % BLOCK);
    if (await listenable(port)) ports.push(port);
  }
  return ports;
}
