import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A real TCP backend on `host:port`: it greets each connection with its name and a newline,
 * then echoes what it reads. It tracks open connections so tests can count where the proxy
 * sent them.
 */
export interface TcpBackend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly sockets: Set<Socket>;
  /** Connections accepted since start. */
  accepted: number;
  close(): Promise<void>;
}

export async function startTcpBackend(
  host: string,
  port: number,
  opts: { name?: string; greet?: boolean } = {},
): Promise<TcpBackend> {
  const name = opts.name ?? `${host}:${port}`;
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    backend.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (opts.greet !== false) s.write(`${name}\n`);
    s.pipe(s);
  });
  // A large accept queue: an overflowing one drops handshakes, and with SYN cookies the proxy's
  // side of such a connection can stay established with nobody on the backend's side.
  server.listen({ host, port, backlog: 4096 });
  await once(server, 'listening');
  const backend: TcpBackend = {
    name,
    host,
    port: (server.address() as { port: number }).port,
    sockets,
    accepted: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return backend;
}

/** A client connection that has read the backend's greeting line. The socket is paused. */
export interface GreetedClient {
  readonly socket: Socket;
  /** The name the backend greeted with. */
  readonly backend: string;
}

/** Connects to host:port and waits for the backend's greeting line (bounded by `timeoutMs`). */
export async function connectGreeted(
  host: string,
  port: number,
  timeoutMs = 5000,
): Promise<GreetedClient> {
  const socket = connect({ host, port, allowHalfOpen: true });
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new Error(`no greeting from ${host}:${port} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeListener('close', onClose);
      socket.on('error', () => {});
      socket.pause();
      // Bytes after the greeting belong to whoever reads the socket next.
      if (nl + 1 < buf.length) socket.unshift(buf.subarray(nl + 1));
      resolve({ socket, backend: buf.subarray(0, nl).toString('utf8') });
    };
    const onClose = (): void =>
      fail(new Error(`connection to ${host}:${port} closed before the greeting`));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onClose);
  });
}

/** Counts how many of `clients` landed on each backend name. */
export function tally(clients: readonly GreetedClient[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of clients) out[c.backend] = (out[c.backend] ?? 0) + 1;
  return out;
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes (then throws). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
