/**
 * Idle HTTP/2 connections for the memory measurement of bench/run.sh: the backend that holds
 * them, and the client that opens them through the proxy under test. Each connection is what an
 * idle gRPC channel is: the HTTP/2 preface and SETTINGS exchanged, one request answered, then
 * nothing.
 *
 *   node bench/idle-conns.ts server HOST PORT            # h2c server; never times a session out
 *   node bench/idle-conns.ts client HOST PORT N [HOLD_S] # opens N, prints "open N failed F", holds
 *
 * The client opens at most 100 connections at a time, prints one line when all are settled
 * (each answered or failed within 10 s), then holds them until SIGTERM or HOLD_S seconds
 * (default 120), closes them and exits. Each side keeps one descriptor per connection: with
 * 5,000 connections that is 5,000 for the client, 5,000 for the server and 10,000 for the proxy
 * between them, each process under a 20,000 open-file limit.
 */
import http2 from 'node:http2';

const CONCURRENT = 100;
const SETTLE_MS = 10_000;

function usage(): never {
  console.error(
    'usage: idle-conns.ts server HOST PORT | idle-conns.ts client HOST PORT N [HOLD_S]',
  );
  process.exit(2);
}

const count = (text: string | undefined, what: string, min: number): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${what} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
};

function serve(host: string, port: number): void {
  const server = http2.createServer();
  let open = 0;
  server.on('session', (s) => {
    open++;
    s.on('close', () => open--);
    s.on('error', () => undefined);
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('idle\n');
  });
  server.setTimeout(0);
  server.listen(port, host, () => console.log(`listening on ${host}:${port}`));
  process.on('SIGUSR2', () => console.log(`sessions ${open}`));
  process.on('SIGTERM', () => process.exit(0));
}

/** One connection: SETTINGS from the far end and one answered request, or a failure. */
function openOne(url: string, sessions: http2.ClientHttp2Session[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = http2.connect(url);
    sessions.push(s);
    const timer = setTimeout(() => done(false), SETTLE_MS);
    let settled = false;
    function done(ok: boolean): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok) s.destroy();
      resolve(ok);
    }
    s.on('error', () => done(false));
    s.on('close', () => done(false));
    const req = s.request({ ':path': '/' });
    req.on('error', () => done(false));
    req.on('response', (h) => {
      if (h[':status'] !== 200) done(false);
    });
    req.resume();
    req.on('end', () => done(true));
    req.end();
  });
}

async function client(host: string, port: number, n: number, holdS: number): Promise<void> {
  const url = `http://${host}:${port}`;
  const sessions: http2.ClientHttp2Session[] = [];
  let ok = 0;
  let failed = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next++;
      if (await openOne(url, sessions)) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT, n) }, lane));
  console.log(`open ${ok} failed ${failed}`);
  const close = (): void => {
    for (const s of sessions) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', close);
  setTimeout(close, holdS * 1000);
}

const [mode, host, portText, nText, holdText] = process.argv.slice(2);
if (host === undefined) usage();
const port = count(portText, 'PORT', 1);
if (mode === 'server') serve(host, port);
else if (mode === 'client')
  await client(
    host,
    port,
    count(nText, 'N', 1),
    holdText === undefined ? 120 : count(holdText, 'HOLD_S', 1),
  );
else usage();
