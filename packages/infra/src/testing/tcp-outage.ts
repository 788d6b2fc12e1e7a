import net from 'node:net';

/**
 * A TCP proxy in front of a dependency (PostgreSQL, Identity) that can be cut (every connection dropped,
 * new ones refused) and restored on the same port: an outage without stopping the shared server.
 */
export class TcpOutage {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  /** Accepts connections again (a no-op while up). */
  async up(): Promise<void> {
    if (this.#server?.listening) return;
    this.#server = net.createServer((inbound) => {
      const outbound = net.connect(this.target.port, this.target.host);
      for (const socket of [inbound, outbound]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((done, fail) => {
      this.#server!.once('error', fail);
      this.#server!.listen(this.port, '127.0.0.1', done);
    });
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  /** Drops every connection and refuses new ones (a no-op while down). */
  async down(): Promise<void> {
    if (!this.#server?.listening) return;
    const closed = new Promise((done) => this.#server?.close(done));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
