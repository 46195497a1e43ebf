import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_DAEMON_CONFIG, Daemon } from '../../src/daemon/daemon.js';
import type { Connection, FaultPoint } from '../../src/proxy/connection.js';
import { FileSource } from '../../src/source/file.js';
import { startTcpBackend, type TcpBackend } from '../support/backends.js';
import { greet } from '../support/lifecycle.js';
import { manifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file only.
const VIP = '127.0.89.1';
const BACKENDS = ['127.0.89.11', '127.0.89.12'];

/** An echo round trip on an open, greeted connection. */
function echo(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo in 3 s')), 3_000);
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('utf8');
      if (got.length < text.length) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      resolve(got);
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

/** Connects and reads the greeting line; the socket stays open. */
function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: VIP, port: 8081 });
    s.once('error', reject);
    s.once('data', () => resolve(s));
  });
}

/** Resolves once `socket` is closed (by either side), with whether it errored. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('error', () => {});
    socket.once('close', () => resolve());
  });
}

describe('fault containment (issue 8)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it.each<FaultPoint>(['accept', 'dial', 'client-data', 'server-data', 'close'])(
    'a throw while handling one connection (%s) closes only that one; the others and new ones are served',
    async (point) => {
      const backends: TcpBackend[] = await Promise.all(
        BACKENDS.map((ip) => startTcpBackend(ip, 9001)),
      );
      cleanups.push(() => Promise.all(backends.map((b) => b.close())));
      const file = await manifestsFile([
        service('plain', { clusterIP: VIP, ports: [{ name: 'tcp', port: 8081 }] }),
        endpointSlice('plain-1', BACKENDS, {
          service: 'plain',
          ports: [{ name: 'tcp', port: 9001 }],
        }),
      ]);
      cleanups.push(() => file.remove());
      const lines: Record<string, unknown>[] = [];
      const logger = pino(
        { level: 'info' },
        { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
      );
      // The seam: armed, the hook throws in the next handler run at `point`, once per arming.
      let armed = 0;
      const faultHook = (_conn: Connection | undefined, at: FaultPoint): void => {
        if (at !== point || armed === 0) return;
        armed--;
        throw new Error(`injected fault at ${at}`);
      };
      const daemon = new Daemon(
        { ...DEFAULT_DAEMON_CONFIG, metricsAddress: undefined, shutdownGraceMs: 500 },
        {
          source: new FileSource({ path: file.path, logger }),
          logger,
          defaultMetrics: false,
          faultHook,
        },
      );
      cleanups.push(async () => {
        daemon.forceClose();
        await daemon.shutdown();
      });
      await daemon.start();
      await daemon.settled();

      const bystanders = await Promise.all([open(), open(), open(), open()]);
      cleanups.push(async () => bystanders.forEach((s) => s.destroy()));

      // Two faults with the same message: both counted, logged once.
      for (let i = 0; i < 2; i++) {
        armed = 1;
        const victim = connect({ host: VIP, port: 8081 });
        victim.on('error', () => {});
        // The victim sends bytes (client-data), gets the greeting (server-data), then closes
        // (close): whichever point is armed fires on this connection.
        victim.once('data', () => victim.end('bye'));
        victim.write('hello');
        await closed(victim);
        expect(armed).toBe(0);
      }

      // Every other connection still works, and so do new ones.
      for (const [i, s] of bystanders.entries()) {
        await expect(echo(s, `ping-${i}`)).resolves.toBe(`ping-${i}`);
      }
      await Promise.all([0, 1, 2, 3, 4].map(() => greet(VIP, 8081, 3_000)));

      expect(Object.fromEntries(daemon.proxier.faults)).toEqual({ [point]: 2 });
      const text = await daemon.metrics.registry.metrics();
      expect(text).toContain(`kube_lc_proxy_connection_faults_total{point="${point}"} 2`);
      expect(
        lines.filter((l) => String(l.msg).startsWith('connection handler failed')),
      ).toHaveLength(1);
      // The Service port's books still balance: only the bystanders are open, and each
      // endpoint counts exactly the connections it holds.
      // (Closed connections are counted out when both their sockets have closed: wait for it,
      // bounded; a connection whose books leaked would never leave.)
      const port = daemon.proxier.get('default/plain:tcp')!;
      const deadline = Date.now() + 5_000;
      while (port.connections.size !== bystanders.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(port.connections.size).toBe(bystanders.length);
      const active = [...port.balancer.endpoints()].reduce((n, e) => n + e.active, 0);
      expect(active).toBe(bystanders.length);
    },
  );
});
