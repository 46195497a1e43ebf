/**
 * Fixture program (run by Node directly, erasable TypeScript only, no local imports): a TCP
 * server that tells each client which backend it reached, then echoes.
 *
 *   node tcp-server.ts --name backend-a [--listen [name@]host:port ...]
 *                      [--max-seconds 300] [--max-connections 1000]
 *
 * Each `--listen` opens one listener (default `0.0.0.0:0`; port 0 lets the kernel choose); a
 * listener's name (default `--name`) is the greeting its clients get: `<name>\n`, then every byte
 * they send comes back. stdout carries one JSON object per line:
 *   {"event":"listening","name","host","port"} per listener, then {"event":"ready"}
 *   {"event":"connection","name","remote","local"} / {"event":"disconnect","name","remote"}
 *   {"event":"rejected","remote"} past --max-connections
 * It exits 0 on SIGTERM, SIGINT or end of stdin (so it never outlives the test holding its
 * stdin), and exits 3 after --max-seconds in any case.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'server' },
    listen: { type: 'string', multiple: true },
    'max-seconds': { type: 'string', default: '300' },
    'max-connections': { type: 'string', default: '1000' },
  },
});

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fail(message: string): never {
  emit({ event: 'error', message });
  process.exit(1);
}

const maxSeconds = Number(values['max-seconds']);
const maxConnections = Number(values['max-connections']);
if (!(maxSeconds > 0 && maxSeconds <= 3600)) fail('--max-seconds must be in (0, 3600]');
if (!(Number.isInteger(maxConnections) && maxConnections > 0 && maxConnections <= 100_000)) {
  fail('--max-connections must be an integer in 1..100000');
}

interface ListenSpec {
  name: string;
  host: string;
  port: number;
}

function parseListen(spec: string): ListenSpec {
  const m = /^(?:([^@]+)@)?(.+):(\d+)$/.exec(spec);
  if (!m) fail(`bad --listen ${spec}: want [name@]host:port`);
  return { name: m[1] ?? values.name, host: m[2]!, port: Number(m[3]) };
}

const specs = (values.listen ?? ['0.0.0.0:0']).map(parseListen);
const sockets = new Set<net.Socket>();
const servers: net.Server[] = [];
let total = 0;

function shutdown(code: number): void {
  for (const s of sockets) s.destroy();
  for (const srv of servers) srv.close();
  process.exit(code);
}

for (const spec of specs) {
  const server = net.createServer((socket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (total >= maxConnections) {
      emit({ event: 'rejected', remote });
      socket.destroy();
      return;
    }
    total += 1;
    sockets.add(socket);
    emit({
      event: 'connection',
      name: spec.name,
      remote,
      local: `${socket.localAddress}:${socket.localPort}`,
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      emit({ event: 'disconnect', name: spec.name, remote });
    });
    socket.write(`${spec.name}\n`);
    socket.pipe(socket);
  });
  servers.push(server);
}

await Promise.all(
  servers.map(
    (server, i) =>
      new Promise<void>((resolve) => {
        const spec = specs[i]!;
        server.once('error', (err) => fail(`listen ${spec.host}:${spec.port}: ${err.message}`));
        server.listen(spec.port, spec.host, () => {
          const addr = server.address() as net.AddressInfo;
          emit({ event: 'listening', name: spec.name, host: spec.host, port: addr.port });
          resolve();
        });
      }),
  ),
);
emit({ event: 'ready' });

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.resume();
setTimeout(() => {
  emit({ event: 'timeout' });
  shutdown(3);
}, maxSeconds * 1000).unref();
