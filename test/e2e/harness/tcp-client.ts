/**
 * Fixture program (run by Node directly, erasable TypeScript only, no local imports): opens N
 * long-lived TCP connections, one after the other, reports which backend each landed on, and
 * holds them until told to close.
 *
 *   node tcp-client.ts --host 10.96.0.10 --port 80 [--count 1] [--connect-timeout-ms 5000]
 *                      [--max-seconds 60] [--no-echo] [--close-after-ready]
 *
 * Each connection reads the backend's greeting line (see tcp-server.ts) and, unless --no-echo,
 * checks one echo round trip, so both directions of the path are proven. stdout carries one
 * JSON object per line:
 *   {"event":"connected","index","backend","local"} per connection, in order
 *   {"event":"ready","backends":[...]} once all are up
 *   {"event":"peer-closed","index","backend"} when a held connection is closed by the far side
 *   {"event":"error","index","message","code"} and exit 1 when a connection fails
 *   {"event":"closed"} and exit 0 after closing (stdin line "close", end of stdin, SIGTERM,
 *   SIGINT, or at once with --close-after-ready)
 * A stdin line "ping" makes it do one echo round trip on every held connection and print
 *   {"event":"pinged","alive":[indices that answered],"dead":[indices that did not]}
 * (needs echo, so not with --no-echo).
 * After --max-seconds it prints {"event":"timeout"} and exits 3 whatever it was doing.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    count: { type: 'string', default: '1' },
    'connect-timeout-ms': { type: 'string', default: '5000' },
    'max-seconds': { type: 'string', default: '60' },
    'no-echo': { type: 'boolean', default: false },
    'close-after-ready': { type: 'boolean', default: false },
  },
});

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const host = values.host;
const port = Number(values.port);
const count = Number(values.count);
const connectTimeoutMs = Number(values['connect-timeout-ms']);
const maxSeconds = Number(values['max-seconds']);
const problems: string[] = [];
if (!host) problems.push('--host is required');
if (!(Number.isInteger(port) && port > 0 && port < 65536)) problems.push('--port must be 1..65535');
if (!(Number.isInteger(count) && count >= 1 && count <= 1000))
  problems.push('--count must be 1..1000');
if (!(connectTimeoutMs > 0 && connectTimeoutMs <= 60_000))
  problems.push('--connect-timeout-ms must be in (0, 60000]');
if (!(maxSeconds > 0 && maxSeconds <= 3600)) problems.push('--max-seconds must be in (0, 3600]');
if (problems.length > 0) {
  emit({ event: 'error', index: -1, message: problems.join('; ') });
  process.exit(1);
}

interface Held {
  index: number;
  socket: net.Socket;
  backend: string;
  closing: boolean;
  state: { buffer: string };
}
const held: Held[] = [];

function closeAll(code: number): never {
  for (const h of held) {
    h.closing = true;
    h.socket.destroy();
  }
  emit({ event: code === 0 ? 'closed' : 'aborted' });
  process.exit(code);
}

setTimeout(() => {
  emit({ event: 'timeout' });
  closeAll(3);
}, maxSeconds * 1000).unref();

/** Reads from `socket` until `buffer` holds a full line; returns the line without "\n". */
function readLine(socket: net.Socket, state: { buffer: string }): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const check = (): boolean => {
      const nl = state.buffer.indexOf('\n');
      if (nl < 0) return false;
      const line = state.buffer.slice(0, nl);
      state.buffer = state.buffer.slice(nl + 1);
      cleanup();
      resolve(line);
      return true;
    };
    const onData = (chunk: string): void => {
      state.buffer += chunk;
      check();
    };
    const onEnd = (): void => {
      cleanup();
      reject(Object.assign(new Error('connection closed before a full line'), { code: 'EOF' }));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    check();
  });
}

async function open(index: number): Promise<Held> {
  const socket = net.connect({ host: host!, port });
  socket.setEncoding('utf8');
  socket.setTimeout(connectTimeoutMs, () =>
    socket.destroy(
      Object.assign(new Error(`no answer in ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }),
    ),
  );
  const state = { buffer: '' };
  const backend = await readLine(socket, state);
  if (!values['no-echo']) {
    const ping = `ping ${index}`;
    socket.write(`${ping}\n`);
    const pong = await readLine(socket, state);
    if (pong !== ping)
      throw Object.assign(new Error(`echo mismatch: ${JSON.stringify(pong)}`), { code: 'EECHO' });
  }
  socket.setTimeout(0);
  const h: Held = { index, socket, backend, closing: false, state };
  socket.on('error', () => {});
  socket.on('close', () => {
    if (!h.closing) emit({ event: 'peer-closed', index, backend });
  });
  emit({ event: 'connected', index, backend, local: `${socket.localAddress}:${socket.localPort}` });
  return h;
}

for (let i = 0; i < count; i++) {
  try {
    held.push(await open(i));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    emit({ event: 'error', index: i, message: e.message, code: e.code });
    closeAll(1);
  }
}
emit({ event: 'ready', backends: held.map((h) => h.backend) });

if (values['close-after-ready']) closeAll(0);

/** One echo round trip on a held connection, bounded by the connect timeout. */
async function pingHeld(h: Held): Promise<boolean> {
  if (h.socket.destroyed) return false;
  const ping = `ping-again ${h.index}`;
  h.socket.write(`${ping}\n`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(''), connectTimeoutMs);
  });
  try {
    return (await Promise.race([readLine(h.socket, h.state), timeout])) === ping;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

let stdinBuffer = '';
let pinging = Promise.resolve();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  stdinBuffer += chunk;
  const lines = stdinBuffer.split('\n');
  stdinBuffer = lines.pop() ?? '';
  for (const line of lines.map((l) => l.trim())) {
    if (line === 'close') closeAll(0);
    if (line === 'ping') {
      pinging = pinging.then(async () => {
        const answers = await Promise.all(held.map(pingHeld));
        emit({
          event: 'pinged',
          alive: held.filter((_, i) => answers[i]).map((h) => h.index),
          dead: held.filter((_, i) => !answers[i]).map((h) => h.index),
        });
      });
    }
  }
});
process.stdin.on('end', () => closeAll(0));
process.on('SIGTERM', () => closeAll(0));
process.on('SIGINT', () => closeAll(0));
