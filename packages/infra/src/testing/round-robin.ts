import net from 'node:net';

/**
 * A TCP load balancer for tests: each new connection goes to the next backend in turn (TLS passes through,
 * so every backend must hold a certificate for the proxy's address). A backend that refuses the connection
 * is skipped for that connection, as a load balancer's connect retry would; requests in flight on a
 * backend that dies are lost, as they would be.
 */
export class RoundRobinProxy {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  #next = 0;
  #pinned: number | undefined;
  port = 0;
  /** Connections handed to each backend, by index. */
  readonly connections: number[];

  constructor(readonly backends: { host: string; port: number }[]) {
    this.connections = backends.map(() => 0);
  }

  async start(port = 0): Promise<number> {
    this.#server = net.createServer((inbound) => {
      inbound.pause();
      this.#track(inbound);
      this.#connect(inbound, 0);
    });
    await new Promise<void>((done, fail) => {
      this.#server!.once('error', fail);
      this.#server!.listen(port, '127.0.0.1', done);
    });
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
  }

  #connect(inbound: net.Socket, attempt: number): void {
    if (attempt >= this.backends.length) {
      inbound.destroy();
      return;
    }
    const index = this.#pinned ?? this.#next++ % this.backends.length;
    const backend = this.backends[index]!;
    const outbound = net.connect(backend.port, backend.host);
    let connected = false;
    outbound.once('connect', () => {
      connected = true;
      this.connections[index]! += 1;
      this.#track(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.resume();
    });
    outbound.on('error', () => {
      if (!connected) this.#connect(inbound, attempt + 1);
      else inbound.destroy();
    });
    outbound.on('close', () => {
      if (connected) inbound.destroy();
    });
    inbound.on('error', () => outbound.destroy());
    inbound.on('close', () => outbound.destroy());
  }

  /**
   * Sends every new connection to one backend (session affinity, as a load balancer gives an app that keeps
   * sessions in memory), or round-robin again with `undefined`.
   */
  pin(backend: number | undefined): void {
    this.#pinned = backend;
  }

  /**
   * Cuts every open connection (the proxy keeps listening), so a client's next request opens a new one and
   * lands on the next backend: how a test makes one browser's steps cross instances.
   */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    const closed = new Promise((done) => this.#server?.close(done));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
