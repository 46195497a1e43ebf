/**
 * Micro-benchmarks of the pure core at scale (issue 13), on the built code in dist/:
 *
 * 1. Pick cost: least-connection picks on one Service port with 10 to 10,000 endpoints. Each
 *    round picks, counts the dial as connected, and closes the oldest of the open connections
 *    (so counts move and the heap reorders, as in steady traffic). Then the same with the counts
 *    in shared memory (worker threads), where a pick is a scan.
 * 2. One EndpointSlice update of one endpoint on a Service port with 10,000 endpoints (100
 *    slices of 100 endpoints, as the EndpointSlice controller cuts them): table build plus the
 *    balancer's update.
 * 3. One endpoint change in a table of 1,000 to 10,000 Service ports of 3 endpoints each: the
 *    table build and the work of finding the changed Service port (what the proxier does).
 *
 *   npm run build && node_modules/.bin/node bench/pick.ts
 *
 * Prints Markdown tables for docs/benchmarks.md. Timings are medians of several rounds.
 */
import { LeastConnBalancer } from '../dist/balancer/least-conn.js';
import { SharedCounts, SlotTable } from '../dist/balancer/shared-counts.js';
import { ServiceTableBuilder } from '../dist/servicetable/builder.js';

type Obj = Record<string, unknown>;

function service(name: string, ip: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'bench', name },
    spec: { clusterIP: ip, ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }] },
  };
}

function slice(svc: string, name: string, ips: string[], notReady = -1): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: 'bench',
      name,
      labels: { 'kubernetes.io/service-name': svc },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    endpoints: ips.map((ip, i) => ({ addresses: [ip], conditions: { ready: i !== notReady } })),
  };
}

const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** A table with one Service port of `n` endpoints, `perSlice` per slice. */
function bigPort(n: number, perSlice: number): { builder: ServiceTableBuilder; slices: Obj[] } {
  const builder = new ServiceTableBuilder();
  builder.upsertService(service('big', '10.96.0.1'));
  const slices: Obj[] = [];
  for (let s = 0; s * perSlice < n; s++) {
    const ips = [];
    for (let i = s * perSlice; i < Math.min(n, (s + 1) * perSlice); i++) ips.push(ip(i + 1));
    const obj = slice('big', `big-${s}`, ips);
    slices.push(obj);
    builder.upsertEndpointSlice(obj);
  }
  return { builder, slices };
}

/**
 * A balancer over the endpoints of `sp`: this thread's counts, or (worker threads) counts in
 * shared memory, where a pick scans the endpoints instead of reading the heap's top.
 */
function balancerFor(
  sp: NonNullable<ReturnType<ReturnType<ServiceTableBuilder['build']>['ports']['get']>>,
  shared: boolean,
): LeastConnBalancer {
  if (!shared) {
    const b = new LeastConnBalancer();
    b.update(sp.endpoints);
    return b;
  }
  const counts = SharedCounts.create(2);
  const slots = new SlotTable(counts);
  slots.assign(1, new Map([[sp.key, sp.endpoints.map((ep) => ep.key)]]), Math.random);
  const b = new LeastConnBalancer({
    shared: { counts, region: 0, slotOf: (ep) => slots.slotOf(sp.key, ep) },
  });
  b.update(sp.endpoints);
  return b;
}

function pickCost(shared = false): string[] {
  const rows = [
    `| endpoints | ns per pick (pick + connected + close)${shared ? ', shared counts' : ''} | ratio to 10 endpoints |`,
  ];
  rows.push('| ---: | ---: | ---: |');
  let base = 0;
  for (const n of [10, 100, 1000, 10_000]) {
    const { builder } = bigPort(n, 100);
    const sp = builder.build().ports.get('bench/big:grpc');
    if (sp === undefined) throw new Error('no port');
    const b = balancerFor(sp, shared);
    // Steady state: 4 connections per endpoint open, the oldest closed after each new one
    // (a ring of the open connections' endpoints).
    const ring = new Array<NonNullable<ReturnType<LeastConnBalancer['pick']>>>(4 * n);
    let next = 0;
    let filled = 0;
    const step = (): void => {
      const ep = b.pick();
      if (ep === undefined) throw new Error('no endpoint');
      b.connected(ep);
      if (filled === ring.length) b.closed(ring[next] as typeof ep, false);
      else filled++;
      ring[next] = ep;
      next = (next + 1) % ring.length;
    };
    // A shared-count pick is a scan: fewer of them at the larger sizes, same rounds.
    const scale = shared ? Math.max(1, n / 10) : 1;
    for (let i = 0; i < 8 * n + Math.round(100_000 / scale); i++) step();
    const rounds: number[] = [];
    const picks = Math.max(500, Math.round(200_000 / scale));
    for (let r = 0; r < 7; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < picks; i++) step();
      rounds.push(Number(process.hrtime.bigint() - t0) / picks);
    }
    const ns = median(rounds);
    if (n === 10) base = ns;
    rows.push(`| ${n.toLocaleString('en')} | ${ns.toFixed(0)} | ${(ns / base).toFixed(2)}x |`);
  }
  return rows;
}

function bigSliceUpdate(): string[] {
  const n = 10_000;
  const { builder, slices } = bigPort(n, 100);
  const b = new LeastConnBalancer();
  b.update(builder.build().ports.get('bench/big:grpc')?.endpoints ?? []);
  const build: number[] = [];
  const update: number[] = [];
  for (let r = 0; r < 21; r++) {
    // Slice 37 turns its endpoint 5 not ready, then ready again: one endpoint changes.
    const s = slices[37] as Obj;
    const obj = slice(
      'big',
      'big-37',
      (s.endpoints as { addresses: string[] }[]).map((e) => e.addresses[0] as string),
      r % 2 === 0 ? 5 : -1,
    );
    const t0 = process.hrtime.bigint();
    builder.upsertEndpointSlice(obj);
    const sp = builder.build().ports.get('bench/big:grpc');
    const t1 = process.hrtime.bigint();
    const changes = b.update(sp?.endpoints ?? []);
    const t2 = process.hrtime.bigint();
    if (changes.length !== 1) throw new Error(`expected 1 change, got ${changes.length}`);
    build.push(Number(t1 - t0) / 1e6);
    update.push(Number(t2 - t1) / 1e6);
  }
  return [
    '| step | ms (median of 21) |',
    '| --- | ---: |',
    `| table build (validate the slice, merge 100 slices, categorize 10,000 endpoints) | ${median(build).toFixed(2)} |`,
    `| balancer update (10,000 endpoints compared, 1 changed) | ${median(update).toFixed(2)} |`,
  ];
}

function tableUpdate(): string[] {
  const rows = [
    '| Service ports | table build after one endpoint change, ms | finding the changed port (walk with ===), ms |',
    '| ---: | ---: | ---: |',
  ];
  for (const n of [1000, 5000, 10_000]) {
    const builder = new ServiceTableBuilder();
    for (let i = 0; i < n; i++) {
      builder.upsertService(service(`s-${i}`, ip(i + 1)));
      builder.upsertEndpointSlice(
        slice(
          `s-${i}`,
          `s-${i}-a`,
          [1, 2, 3].map((k) => ip(n * k + i)),
        ),
      );
    }
    let table = builder.build();
    const build: number[] = [];
    const walk: number[] = [];
    for (let r = 0; r < 21; r++) {
      const obj = slice(
        's-7',
        's-7-a',
        [1, 2, 3].map((k) => ip(n * k + 7)),
        r % 2 === 0 ? 1 : -1,
      );
      const t0 = process.hrtime.bigint();
      builder.upsertEndpointSlice(obj);
      const next = builder.build();
      const t1 = process.hrtime.bigint();
      // What Proxier.apply does for ports that stay: compare each with the previous table's.
      let changed = 0;
      for (const [key, sp] of next.ports) if (table.ports.get(key) !== sp) changed++;
      const t2 = process.hrtime.bigint();
      if (changed !== 1) throw new Error(`expected 1 changed port, got ${changed}`);
      table = next;
      build.push(Number(t1 - t0) / 1e6);
      walk.push(Number(t2 - t1) / 1e6);
    }
    rows.push(
      `| ${n.toLocaleString('en')} | ${median(build).toFixed(3)} | ${median(walk).toFixed(3)} |`,
    );
  }
  return rows;
}

/** The three micro-benchmarks, as Markdown (headings at `level`), and the pick cost at 10,000. */
export function microBenchmarks(level = '###'): { markdown: string[]; pickNsAt10k: number } {
  const picks = pickCost();
  const at10k = Number(/^\| 10,000 \| (\d+)/m.exec(picks.join('\n'))?.[1]);
  return {
    markdown: [
      `${level} Pick cost`,
      '',
      ...picks,
      '',
      'With worker threads (`--workers`), counts are in shared memory and other threads move them,',
      'so a pick scans the eligible endpoints instead of reading the top of a heap:',
      '',
      ...pickCost(true),
      '',
      `${level} One EndpointSlice update on a Service port with 10,000 endpoints`,
      '',
      ...bigSliceUpdate(),
      '',
      `${level} One endpoint change in a table of many Service ports`,
      '',
      ...tableUpdate(),
    ],
    pickNsAt10k: at10k,
  };
}

if (import.meta.main) console.log(microBenchmarks().markdown.join('\n'));
