import * as grpc from '@grpc/grpc-js';

/**
 * A tiny gRPC echo service, without .proto files (payloads are raw bytes), used by the demo and
 * by the tests as real gRPC peers.
 * - Unary `/klp.Echo/Who`: request is JSON `{ "delayMs": n }`; replies with the backend name
 *   after the delay.
 * - Server streaming `/klp.Echo/Ticks`: request `{ "count": n, "intervalMs": m }`; sends the
 *   backend name n times, m ms apart.
 */
const raw = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

export const echoService = {
  who: { path: '/klp.Echo/Who', requestStream: false, responseStream: false, ...raw },
  ticks: { path: '/klp.Echo/Ticks', requestStream: false, responseStream: true, ...raw },
} as const;

export interface GrpcBackend {
  readonly name: string;
  readonly address: string;
  port: number;
  /** RPCs served. */
  served: number;
  /** Incoming HTTP/2 sessions (TCP connections) accepted. */
  sessions: number;
  /** Incoming HTTP/2 sessions open now: the connections this backend holds. */
  openSessions: number;
  readonly server: grpc.Server;
  /** Stops at once, cutting open calls. */
  close(): Promise<void>;
  /** Stops accepting and waits for open calls (what a gRPC server does on SIGTERM). */
  shutdownGracefully(): Promise<void>;
}

/** Starts a grpc-js server on host:port serving the echo service under `name`. */
export async function startGrpcBackend(
  host: string,
  port: number,
  name = `${host}:${port}`,
  options: grpc.ServerOptions = {},
): Promise<GrpcBackend> {
  const server = new grpc.Server(options);
  const backend: GrpcBackend = {
    name,
    address: host,
    port, // the port the kernel chose when `port` is 0, once bound
    served: 0,
    sessions: 0,
    openSessions: 0,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
    shutdownGracefully: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
  server.addService(echoService as unknown as grpc.ServiceDefinition, {
    who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const delayMs = bounded(parse(call.request).delayMs, 0, 0, MAX_DELAY_MS);
      backend.served++;
      const t = setTimeout(() => cb(null, Buffer.from(name)), delayMs);
      call.on('cancelled', () => clearTimeout(t));
    },
    ticks: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const request = parse(call.request);
      const count = bounded(request.count, 1, 1, MAX_TICKS);
      const intervalMs = bounded(request.intervalMs, 100, 1, MAX_DELAY_MS);
      backend.served++;
      let sent = 0;
      const timer = setInterval(() => {
        if (call.cancelled) return clearInterval(timer);
        call.write(Buffer.from(name));
        if (++sent >= count) {
          clearInterval(timer);
          call.end();
        }
      }, intervalMs);
      call.on('cancelled', () => clearInterval(timer));
    },
  });
  backend.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  const http2 = (
    server as unknown as {
      http2Servers?: Map<
        { on(e: 'session', f: (s: { once(e: 'close', f: () => void): void }) => void): void },
        unknown
      >;
    }
  ).http2Servers;
  for (const s of http2?.keys() ?? [])
    s.on('session', (session) => {
      backend.sessions++;
      backend.openSessions++;
      session.once('close', () => backend.openSessions--);
    });
  return backend;
}

/** Requests come from outside: delays and counts are clamped, bad JSON counts as `{}`. */
const MAX_DELAY_MS = 10_000;
const MAX_TICKS = 10_000;

function bounded(v: unknown, dflt: number, min: number, max: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : dflt;
}

function parse(b: Buffer): { delayMs?: number; count?: number; intervalMs?: number } {
  try {
    return b.length === 0 ? {} : (JSON.parse(b.toString('utf8')) as Record<string, number>);
  } catch {
    return {};
  }
}

const EchoClient = grpc.makeGenericClientConstructor(
  echoService as unknown as grpc.ServiceDefinition,
  'Echo',
);

/** A grpc-js client with one channel to `target` (host:port). */
export class EchoClientHandle {
  readonly client: grpc.Client;
  constructor(target: string, options: grpc.ChannelOptions = {}) {
    // A channel of its own: grpc-js otherwise shares one connection between equal channels.
    this.client = new EchoClient(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      ...options,
    });
  }

  /** One unary RPC; resolves with the backend name. */
  who(delayMs = 0, deadlineMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      (this.client as unknown as Record<string, (...args: unknown[]) => unknown>).who!(
        Buffer.from(JSON.stringify({ delayMs })),
        { deadline: Date.now() + deadlineMs },
        (err: grpc.ServiceError | null, res: Buffer) =>
          err ? reject(err) : resolve(res.toString('utf8')),
      );
    });
  }

  /** A server-streaming RPC; resolves with the messages, rejects with the error. */
  ticks(count: number, intervalMs: number): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const got: string[] = [];
      const call = (this.client as unknown as Record<string, (...args: unknown[]) => unknown>)
        .ticks!(
        Buffer.from(JSON.stringify({ count, intervalMs })),
      ) as grpc.ClientReadableStream<Buffer>;
      call.on('data', (b: Buffer) => got.push(b.toString('utf8')));
      call.on('error', (err) => reject(Object.assign(err, { received: got })));
      call.on('end', () => resolve(got));
    });
  }

  close(): void {
    this.client.close();
  }
}
