/**
 * Starting the fixture programs (tcp-server.ts, tcp-client.ts) inside namespaces with the
 * project's Node (`process.execPath`, which runs erasable TypeScript directly), and reading
 * their JSON output.
 */
import { fileURLToPath } from 'node:url';
import type { Harness } from './netns.js';
import type { JsonEvent, NsProcess } from './process.js';

/** Path of the TCP server fixture. */
export const TCP_SERVER_PROGRAM = fileURLToPath(new URL('./tcp-server.ts', import.meta.url));
/** Path of the TCP client fixture. */
export const TCP_CLIENT_PROGRAM = fileURLToPath(new URL('./tcp-client.ts', import.meta.url));

/** One listener to open: `name` is the greeting its clients get. Port 0 (default): any port. */
export interface ListenerSpec {
  readonly name: string;
  readonly host?: string;
  readonly port?: number;
}

/** A running tcp-server. `ports` maps listener name to the port the kernel gave it. */
export interface TcpServer {
  readonly process: NsProcess;
  readonly ports: ReadonlyMap<string, number>;
  /** The port of listener `name`; throws for an unknown name. */
  port(name: string): number;
  stop(): Promise<void>;
}

/**
 * Starts tcp-server in `ns` with the given listeners (host default `0.0.0.0`) and resolves once
 * all listen. Rejects, with the program's output, if it fails first or takes over `timeoutMs`.
 */
export async function startTcpServer(
  h: Harness,
  ns: string,
  listeners: readonly ListenerSpec[],
  opts: { maxSeconds?: number; timeoutMs?: number } = {},
): Promise<TcpServer> {
  const args = listeners.flatMap((l) => [
    '--listen',
    `${l.name}@${l.host ?? '0.0.0.0'}:${l.port ?? 0}`,
  ]);
  const p = h.spawn(ns, [
    process.execPath,
    TCP_SERVER_PROGRAM,
    ...args,
    '--max-seconds',
    String(opts.maxSeconds ?? 300),
  ]);
  await p.waitForEvent((e) => e.event === 'ready', opts.timeoutMs ?? 15_000);
  const ports = new Map<string, number>();
  for (const e of p.events()) {
    if (e.event === 'listening') ports.set(String(e.name), Number(e.port));
  }
  return {
    process: p,
    ports,
    port: (name) => {
      const port = ports.get(name);
      if (port === undefined) throw new Error(`no listener named ${name}`);
      return port;
    },
    stop: async () => {
      await p.stop();
    },
  };
}

/** Options of the client fixture. */
export interface TcpClientOptions {
  /** Connections to open, one after another (1..1000). Default 1. */
  readonly count?: number;
  /** Per connection: connect, greeting and echo must finish within this. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Hard limit of the program's life. Default 60. */
  readonly maxSeconds?: number;
  /** Skip the echo round trip. */
  readonly noEcho?: boolean;
}

/** A tcp-client holding its connections. */
export interface TcpClient {
  readonly process: NsProcess;
  /** Backend name per connection, in connection order. */
  readonly backends: readonly string[];
  /** Indices of held connections the far side has closed so far. */
  peerClosed(): number[];
  /**
   * One echo round trip on every held connection: which still carry bytes both ways. Needs
   * echo (not `noEcho`).
   */
  ping(timeoutMs?: number): Promise<{ alive: number[]; dead: number[] }>;
  /** Tells it to close every connection; resolves when it has exited. */
  close(): Promise<void>;
}

function clientArgv(host: string, port: number, opts: TcpClientOptions, extra: string[]): string[] {
  return [
    process.execPath,
    TCP_CLIENT_PROGRAM,
    '--host',
    host,
    '--port',
    String(port),
    '--count',
    String(opts.count ?? 1),
    '--connect-timeout-ms',
    String(opts.connectTimeoutMs ?? 5000),
    '--max-seconds',
    String(opts.maxSeconds ?? 60),
    ...(opts.noEcho ? ['--no-echo'] : []),
    ...extra,
  ];
}

/**
 * Starts tcp-client in `ns` towards `host:port` and resolves once all connections are up,
 * with the backend each landed on. Rejects with the program's output when one fails.
 */
export async function startTcpClient(
  h: Harness,
  ns: string,
  host: string,
  port: number,
  opts: TcpClientOptions = {},
): Promise<TcpClient> {
  const p = h.spawn(ns, clientArgv(host, port, opts, []));
  const count = opts.count ?? 1;
  const budget = count * (opts.connectTimeoutMs ?? 5000) + 10_000;
  const ready = await p.waitForEvent((e) => e.event === 'ready' || e.event === 'error', budget);
  if (ready.event === 'error') {
    await p.stop();
    throw new Error(`${p.describe()}: ${JSON.stringify(ready)}\nstderr: ${p.stderr}`);
  }
  return {
    process: p,
    backends: (ready.backends as string[]).slice(),
    peerClosed: () =>
      p
        .events()
        .filter((e) => e.event === 'peer-closed')
        .map((e) => Number(e.index)),
    ping: async (timeoutMs = 15_000) => {
      const seen = p.events().filter((e) => e.event === 'pinged').length;
      p.write('ping\n');
      const e = await p.waitForEvent((ev) => ev.event === 'pinged', timeoutMs, seen);
      return { alive: e.alive as number[], dead: e.dead as number[] };
    },
    close: async () => {
      p.write('close\n');
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(timer);
    },
  };
}

/** What one probe connection found. */
export type ProbeResult =
  | { readonly ok: true; readonly backend: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * One connection from `ns` to `host:port`, closed at once: which backend answered, or why none
 * did (`ECONNREFUSED`, `ETIMEDOUT`, ...). Never rejects for a failed connection; only for a
 * program that misbehaves.
 */
export async function probeTcp(
  h: Harness,
  ns: string,
  host: string,
  port: number,
  opts: Pick<TcpClientOptions, 'connectTimeoutMs' | 'noEcho'> = {},
): Promise<ProbeResult> {
  const result = await h.exec(
    ns,
    clientArgv(host, port, { ...opts, count: 1, maxSeconds: 30 }, ['--close-after-ready']),
    { check: false, timeoutMs: 40_000 },
  );
  const events = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent);
  const connected = events.find((e) => e.event === 'connected');
  if (connected) return { ok: true, backend: String(connected.backend) };
  const error = events.find((e) => e.event === 'error');
  if (error) return { ok: false, code: String(error.code), message: String(error.message) };
  throw new Error(
    `probe ${host}:${port} from ${ns}: no answer\n${result.stdout}\n${result.stderr}`,
  );
}
