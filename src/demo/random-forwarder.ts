import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * What kube-proxy does for a ClusterIP, in the demo: each new TCP connection goes to a backend
 * chosen uniformly at random among the ready ones (iptables `statistic --mode random`), and then
 * bytes are copied both ways untouched. Nothing ever moves an open connection: it lives until the
 * client or the backend closes it. Terminating backends get no new connections; their open ones
 * stay until the backend itself closes them.
 */
export class RandomForwarder {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #host: string;
  readonly #port: number;

  /** `ready()` lists the `host:port` of the backends new connections may go to now. */
  constructor(host: string, port: number, ready: () => readonly string[]) {
    this.#host = host;
    this.#port = port;
    this.#server = createServer((client) => {
      const choices = ready();
      const target = choices[Math.floor(Math.random() * choices.length)];
      this.#track(client);
      if (target === undefined) return void client.destroy();
      const i = target.lastIndexOf(':');
      const upstream = connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)) });
      this.#track(upstream);
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      client.pipe(upstream);
      upstream.pipe(client);
      // Either side gone: the other goes too, as a NATed flow whose peer reset it would.
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.once('close', end);
      upstream.once('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
  }

  /** Listens on the node's ClusterIP:port. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Where it listens (the port the kernel chose when asked for 0). */
  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** Stops listening and cuts every connection. */
  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
  }
}
