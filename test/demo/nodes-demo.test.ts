import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  backendAddress,
  clientsOnNode,
  MODE_NAMES,
  nodeAddress,
  parseModes,
} from '../../src/demo/modes.js';
import { describeDrains, formatNodesReport, unavailableMode } from '../../src/demo/nodes-report.js';
import { renderNodesFrame } from '../../src/demo/nodes-view.js';
import { nodeManifests } from '../../src/demo/proxy-node.js';
import { RandomForwarder } from '../../src/demo/random-forwarder.js';
import { parseManifests } from '../../src/source/manifests.js';

describe('demo modes and addresses', () => {
  it.each([
    ['random,node-local,cluster', ['random', 'node-local', 'cluster']],
    ['cluster, random', ['random', 'cluster']],
    ['node-local', ['node-local']],
    ['random,round-robin', 'unknown mode round-robin (known: random, node-local, cluster)'],
    [' , ', 'name at least one mode'],
  ])('--modes %j', (text, want) => {
    expect(parseModes(text)).toEqual(want);
  });

  it('gives every backend and node of every mode its own address on 127.0.100.0/24', () => {
    const all = MODE_NAMES.flatMap((m) => [
      ...Array.from({ length: 19 }, (_, i) => backendAddress(m, i + 1)),
      ...Array.from({ length: 20 }, (_, i) => nodeAddress(m, i + 1)),
    ]);
    expect(new Set(all).size).toBe(all.length);
    for (const a of all) expect(a).toMatch(/^127\.0\.100\.([1-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-4])$/);
  });

  it.each([
    [6, 12, [2, 2, 2, 2, 2, 2]],
    [8, 12, [2, 2, 2, 2, 1, 1, 1, 1]],
    [4, 3, [1, 1, 1, 0]],
  ])('%i nodes, %i clients: %j per node', (nodes, clients, want) => {
    const got = Array.from({ length: nodes }, (_, k) => clientsOnNode(k, nodes, clients));
    expect(got).toEqual(want);
    expect(got.reduce((a, b) => a + b, 0)).toBe(clients);
  });
});

describe('demo manifests', () => {
  it('are what the proxy reads: the same Service port name on every node, a node-local ClusterIP', () => {
    const text = nodeManifests('127.0.100.133', 50051, [
      { address: '127.0.100.21', state: 'ready' },
      { address: '127.0.100.22', state: 'terminating' },
    ]);
    const parsed = parseManifests(text, 'node-3.yaml');
    expect(parsed.objects.map((x) => `${x.kind} ${x.namespace}/${x.name}`)).toEqual([
      'Service default/demo',
      'EndpointSlice default/demo-1',
    ]);
    const svc = parsed.objects[0]!.raw as { spec: { clusterIP: string } };
    expect(svc.spec.clusterIP).toBe('127.0.100.133');
    const slice = parsed.objects[1]!.raw as {
      endpoints: { addresses: string[]; conditions: Record<string, boolean> }[];
    };
    expect(slice.endpoints.map((e) => [e.addresses[0], e.conditions])).toEqual([
      ['127.0.100.21', { ready: true, serving: true, terminating: false }],
      ['127.0.100.22', { ready: false, serving: true, terminating: true }],
    ]);
  });
});

describe('demo narration and report', () => {
  it('sums drains by reason and lists the nodes in order', () => {
    expect(
      describeDrains([
        { node: 'node-10', reason: 'rebalance', n: 1 },
        { node: 'node-2', reason: 'rebalance', n: 2 },
        { node: 'node-2', reason: 'endpoint_terminating', n: 1 },
      ]),
    ).toBe(
      '4 connections drained with GOAWAY (rebalance 3, endpoint_terminating 1) on node-2, node-10',
    );
  });

  it('shows the modes side by side on a terminal, and one line per frame otherwise', () => {
    const frame = {
      t: 3.25,
      phase: 'scale out to 4 backends',
      nodes: 6,
      clients: 12,
      columns: [
        {
          mode: 'random' as const,
          rows: [
            { name: 'b1', state: 'terminating', connections: 7 },
            { name: 'b2', state: 'ready', connections: 5 },
          ],
          skew: 1.17,
          drains: 0,
          failed: 0,
        },
        { mode: 'cluster' as const, note: 'not run: no --peers', skew: 1, drains: 0, failed: 0 },
      ],
      events: ['  1.0s  scale out to 4 backends'],
    };
    const tty = renderNodesFrame(frame, true, 6);
    expect(tty.startsWith('\x1b[H\x1b[J')).toBe(true);
    expect(tty).toMatch(/random \(kube-proxy\)\s+cluster view/);
    expect(tty).toMatch(/backend b1\s+7 █+ \(terminating\)/);
    expect(tty).toContain('cluster: not run: no --peers');
    expect(tty).toContain('  1.0s  scale out to 4 backends');
    expect(renderNodesFrame(frame, false, 6)).toBe(
      't=3.3s random: b1=7 b2=5 skew=1.17 | cluster: off\n',
    );
  });

  it('reports a mode that could not run with its reason', () => {
    const text = formatNodesReport({
      nodes: 6,
      clients: 12,
      durationSeconds: 45,
      steps: [],
      events: [],
      modes: [unavailableMode('cluster', 'not run: no --peers')],
      failedRpcs: 0,
    });
    expect(text).toMatch(/cluster view\n\s+not run: no --peers/);
  });
});

// Addresses of this file: 127.0.101.0/24 (the forwarder tests).
const HOST = '127.0.101.1';

describe('RandomForwarder (kube-proxy in the demo)', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  /** A TCP backend that answers every connection with its name, then echoes. */
  async function backend(
    name: string,
  ): Promise<{ server: Server; port: number; accepted: number; sockets: Socket[] }> {
    const b = { server: createServer(), port: 0, accepted: 0, sockets: [] as Socket[] };
    b.server.on('connection', (s: Socket) => {
      b.accepted++;
      b.sockets.push(s);
      s.write(name);
      s.pipe(s);
    });
    await new Promise<void>((r) => b.server.listen(0, HOST, r));
    b.port = (b.server.address() as { port: number }).port;
    closers.push(() => new Promise((r) => b.server.close(() => r())));
    return b;
  }

  function dial(port: number): Promise<{ socket: Socket; first: string }> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: HOST, port });
      socket.once('error', reject);
      socket.once('data', (d) => resolve({ socket, first: String(d) }));
    });
  }

  it('sends each connection to a random ready backend and copies bytes both ways', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await backend('c');
    const ready = [`${HOST}:${a.port}`, `${HOST}:${b.port}`];
    const f = new RandomForwarder(HOST, 0, () => ready);
    await f.listen();
    closers.push(() => f.close());
    const port = f.address().port;
    const seen = new Set<string>();
    const sockets: Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const { socket, first } = await dial(port);
      sockets.push(socket);
      seen.add(first);
    }
    // 40 connections over 2 backends: both get some (1 - 2^-39), the not-ready one none.
    expect([...seen].sort()).toEqual(['a', 'b']);
    expect(c.accepted).toBe(0);
    const echoed = new Promise<string>((r) => sockets[0]!.once('data', (d) => r(String(d))));
    sockets[0]!.write('ping');
    expect(await echoed).toBe('ping');
    for (const s of sockets) s.destroy();
  });

  it('closes the client when its backend goes away', async () => {
    const a = await backend('a');
    const f = new RandomForwarder(HOST, 0, () => [`${HOST}:${a.port}`]);
    await f.listen();
    closers.push(() => f.close());
    const { socket } = await dial(f.address().port);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    for (const s of a.sockets) s.destroy();
    await closed;
  });
});
