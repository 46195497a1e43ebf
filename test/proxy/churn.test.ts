import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/backends.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

// Addresses of this file: 127.0.43.0/24.
const VIP = '127.0.43.50';
const ECHO = '127.0.43.11';
const FLAKY = '127.0.43.12';

/**
 * The churn of the report: 2,000 concurrent clients open and close connections for 20 s, in
 * every way a client can leave (clean FIN, reset, gone before the proxy dialed, half-close,
 * gone while the proxy is paused on backpressure), against one echo backend and one that
 * resets, closes early or stops reading. Afterwards every count returns to 0 and the proxy's
 * descriptors to what they were before. Override with CHURN_SECONDS / CHURN_CLIENTS (the figure
 * of the report is the default).
 */
const SECONDS = Number(process.env.CHURN_SECONDS ?? 20);
const CLIENTS = Number(process.env.CHURN_CLIENTS ?? 2000);

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/**
 * The two backends, in a process of their own: the test process is busy with 2,000 clients, and
 * backends sharing its event loop fall behind on accepting, which stalls the churn itself.
 * ECHO echoes; FLAKY misbehaves in turn: resets at once, resets after a read, closes early, or
 * never reads (the proxy is then paused by backpressure once the client sends enough).
 */
const BACKENDS = `
const net = require('node:net');
const [echoHost, flakyHost] = process.argv.slice(1);
const echo = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); });
let n = 0;
const flaky = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  switch (n++ % 4) {
    case 0: s.resetAndDestroy(); break;
    case 1: s.once('data', () => s.resetAndDestroy()); s.on('end', () => s.end()); break;
    case 2: s.end('bye\\n'); s.resume(); break;
    default: s.pause(); setTimeout(() => s.destroy(), 2000).unref();
  }
});
let up = 0;
const ready = () => { if (++up === 2) process.stdout.write('ready\\n'); };
echo.listen({ host: echoHost, port: 9000, backlog: 4096 }, ready);
flaky.listen({ host: flakyHost, port: 9000, backlog: 4096 }, ready);
`;

async function startBackends(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', BACKENDS, ECHO, FLAKY], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  return child;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One client's life, chosen by `kind`. Resolves when its socket is closed. */
function clientLife(kind: number, big: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: VIP, port: 8080, allowHalfOpen: true });
    s.on('error', () => {});
    s.on('close', () => resolve());
    // Every life ends within 3 s at most, whatever the proxy or the backend does.
    const bound = setTimeout(() => s.destroy(), 3_000);
    s.on('close', () => clearTimeout(bound));
    switch (kind % 6) {
      case 0: // gone before the proxy could dial
        s.destroy();
        break;
      case 1: // request, reply, clean FIN
        s.once('connect', () => s.end('hello\n'));
        s.resume();
        s.on('end', () => s.end());
        break;
      case 2: // reset mid-flight
        s.once('connect', () => {
          s.write('hello\n');
          setTimeout(() => s.resetAndDestroy(), 5);
        });
        s.resume();
        break;
      case 3: // half-close at once, then gone without reading
        s.once('connect', () => {
          s.end();
          setTimeout(() => s.destroy(), 20);
        });
        break;
      case 4:
        // Floods, then FIN: against the backend that stops reading, the proxy pauses this client
        // and must still learn that it left (the 3 s bound destroys it). It reads what comes
        // back and sends its FIN after its data. A client that leaves with data still unsent
        // while neither side reads would deadlock both directions until its kernel gives up on
        // the orphaned socket (minutes), with or without a proxy; only --idle-timeout ends that.
        s.once('connect', () => s.end(big));
        s.resume();
        s.on('end', () => s.destroy());
        break;
      default: // connects and leaves after a moment without a byte
        s.once('connect', () => setTimeout(() => s.end(), 10));
        s.resume();
        s.on('end', () => s.destroy());
    }
  });
}

let proxy: ProxyProcess | undefined;
let backends: ChildProcess | undefined;
let file: ManifestsFile | undefined;

afterAll(async () => {
  await proxy?.stop('SIGKILL');
  backends?.kill('SIGKILL');
  await file?.remove();
});

describe('connection counts after churn', () => {
  it(
    `return to 0, and the descriptors to the baseline, after ${CLIENTS} clients churn for ${SECONDS} s`,
    async () => {
      backends = await startBackends();
      file = await manifestsFile([
        service('churn', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] }),
        endpointSlice('churn-1', [ECHO, FLAKY], { service: 'churn' }),
      ]);
      proxy = await startProxyProcess(['--source', `file:${file.path}`]);
      const pid = proxy.child.pid as number;
      const active = async (): Promise<number> =>
        (await proxy!.metricSum('kube_lc_proxy_active_connections')) +
        (await proxy!.metricSum('kube_lc_proxy_draining_connections'));
      // Baseline after one connection went through (lazy allocations done).
      await clientLife(1, Buffer.alloc(0));
      await waitFor('idle before churn', async () => (await active()) === 0);
      const baseline = fds(pid);

      const big = Buffer.alloc(1 << 20, 0x61);
      const deadline = Date.now() + SECONDS * 1000;
      let lives = 0;
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, i) => {
          let kind = i;
          while (Date.now() < deadline) {
            await clientLife(kind++, big);
            lives++;
            await sleep(i % 50); // spread the clients' rhythms
          }
        }),
      );
      expect(lives).toBeGreaterThan(CLIENTS);
      // The churn went through the proxy to both backends, not just into refusals.
      expect(await proxy.metricSum('kube_lc_proxy_connections_total')).toBeGreaterThan(CLIENTS);

      // Within 10 s of the clients stopping: no connection counted, no descriptor left over.
      await waitFor('active counts back to 0', async () => (await active()) === 0, 10_000).catch(
        (err: Error) => {
          // Say where they are stuck: the proxy's sockets by state and peer.
          const ss = execFileSync('ss', ['-tanpH'], { encoding: 'utf8', maxBuffer: 1 << 28 })
            .split('\n')
            .filter((l) => l.includes(`pid=${pid},`))
            .map((l) => l.split(/\s+/))
            .map(
              ([state, , , local, peer]) =>
                `${state} ${local?.endsWith(':8080') ? 'client' : peer}`,
            );
          const tally = new Map<string, number>();
          for (const k of ss) tally.set(k, (tally.get(k) ?? 0) + 1);
          const state = execFileSync('curl', ['-s', `${proxy?.metricsUrl}/debug/state`], {
            encoding: 'utf8',
          });
          throw new Error(
            `${err.message}; proxy sockets: ${JSON.stringify([...tally])}; descriptors ${fds(pid)} (baseline ${baseline}); state ${state.replace(/\s+/g, '')}`,
          );
        },
      );
      // Both counts and descriptors: Node's resetAndDestroy() leaked the descriptor of a socket
      // whose FIN was still queued, while its 'close' event (and so the counts) went through.
      await waitFor('descriptors back to baseline', () => fds(pid) <= baseline, 10_000);
      const state = (await (await fetch(`${proxy.metricsUrl}/debug/state`)).json()) as {
        servicePorts: { endpoints: { active: number; draining: number }[] }[];
      };
      for (const sp of state.servicePorts)
        for (const ep of sp.endpoints) expect([ep.active, ep.draining]).toEqual([0, 0]);
    },
    SECONDS * 1000 + 60_000,
  );
});
