import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpBackend, type TcpBackend } from '../support/backends.js';
import {
  EchoClientHandle,
  startGrpcBackend,
  steadyLoad,
  type GrpcBackend,
} from '../support/grpc.js';
import { connectLoop, freePort, spawnRun, type RunProcess } from '../support/lifecycle.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file only (127.0.88.0/24): a gRPC Service and a plain TCP Service.
const VIP = '127.0.88.1';
const PLAIN_VIP = '127.0.88.2';
const BACKENDS = ['127.0.88.11', '127.0.88.12', '127.0.88.13'];

/**
 * The upgrade path with intercept `none` (issue 8): a second `kube-lc-proxy run` with the same
 * flags starts next to the first (SO_REUSEPORT), reports ready, then the first gets SIGTERM,
 * closes its listeners and drains its h2c connections with GOAWAY. Under steady gRPC load and a
 * TCP connect loop, no RPC fails and no connect is refused.
 */
describe('handover to a second process (intercept none)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('a second run next to the first, then SIGTERM to the first: 0 failed RPCs, 0 refused connects', async () => {
    const grpcBackends: GrpcBackend[] = await Promise.all(
      BACKENDS.map((ip) => startGrpcBackend(ip, 9000)),
    );
    cleanups.push(() => Promise.all(grpcBackends.map((b) => b.close())));
    const tcpBackends: TcpBackend[] = await Promise.all(
      BACKENDS.map((ip) => startTcpBackend(ip, 9001)),
    );
    cleanups.push(() => Promise.all(tcpBackends.map((b) => b.close())));
    // Connections queued on the first process's listeners when it closes them would be reset
    // unless net.ipv4.tcp_migrate_req is 1 (the e2e suite measures both). Turn it on for this
    // test where permitted, and put the machine's value back afterwards.
    const migrate = '/proc/sys/net/ipv4/tcp_migrate_req';
    const before = await readFile(migrate, 'utf8').catch(() => undefined);
    if (before !== undefined && before.trim() !== '1') {
      const set = await writeFile(migrate, '1\n').then(
        () => true,
        () => false,
      );
      if (set) cleanups.push(() => writeFile(migrate, before));
    }
    const file: ManifestsFile = await manifestsFile([
      service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] }),
      endpointSlice('echo-1', BACKENDS, { service: 'echo', ports: [{ name: 'grpc', port: 9000 }] }),
      service('plain', { clusterIP: PLAIN_VIP, ports: [{ name: 'tcp', port: 8081 }] }),
      endpointSlice('plain-1', BACKENDS, {
        service: 'plain',
        ports: [{ name: 'tcp', port: 9001 }],
      }),
    ]);
    cleanups.push(() => file.remove());
    // The same flags for both processes, the metrics address included (shared, SO_REUSEPORT).
    const flags = [
      '--source',
      `file:${file.path}`,
      '--intercept',
      'none',
      '--metrics-address',
      `127.0.0.1:${await freePort()}`,
      '--shutdown-grace',
      '10s',
      // The test sets the sysctl itself above (and restores it): the machine's network
      // namespace is shared.
      '--no-set-tcp-migrate-req',
    ];
    const first: RunProcess = spawnRun(flags);
    cleanups.push(() => first.stop('SIGKILL'));
    await first.ready();

    const clients = [0, 1, 2].map(() => new EchoClientHandle(`${VIP}:8080`));
    cleanups.push(async () => clients.forEach((c) => c.close()));
    await Promise.all(clients.map((c) => c.who()));
    // 50 RPC/s per channel, 50 ms each, and 20 TCP connects/s, for 7 s; the handover happens
    // within the first 4 s.
    const loadMs = 7_000;
    const rpcs = Promise.all(clients.map((c) => steadyLoad(c, 50, loadMs, 50)));
    const connects = connectLoop(PLAIN_VIP, 8081, 20, loadMs);

    await new Promise((r) => setTimeout(r, 1_000));
    const second: RunProcess = spawnRun(flags);
    cleanups.push(() => second.stop('SIGKILL'));
    await second.ready();
    const firstExit = await first.stop('SIGTERM');

    const results = await rpcs;
    const tcp = await connects;
    const failed = results.reduce((n, r) => n + r.failed, 0);
    const ok = results.reduce((n, r) => n + r.ok, 0);
    const errors = results.flatMap((r) => [...r.errors]);
    expect({ failed, errors }).toEqual({ failed: 0, errors: [] });
    expect(ok).toBe(3 * Math.floor((50 * loadMs) / 1000));
    expect({ refused: tcp.refused, errors: [...tcp.errors] }).toEqual({ refused: 0, errors: [] });
    expect(tcp.ok).toBe(tcp.attempts);
    expect(firstExit).toBe(0);
    // The first process drained its h2c connections (GOAWAY), it did not cut them.
    const drained = first.logs.find(
      (l) => l.msg === 'stopped accepting; draining open connections',
    );
    expect(drained?.draining).toBeGreaterThan(0);
    expect(
      first.logs.some((l) => l.msg === 'shutdown grace over; closing the connections left'),
    ).toBe(false);
    // After the handover the clients are served by the second process alone.
    const after = await Promise.all(clients.map((c) => c.who()));
    expect(after).toHaveLength(3);
    expect(second.child.exitCode).toBeNull();
  });
});
