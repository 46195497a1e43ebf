/**
 * How often does a client miss a backend under max-age drains? A simulation with the real
 * balancer and drain planner (from dist/: run `npm run build` first), no sockets:
 * 20 clients with one connection each send an RPC every 100 ms; connections are drained at their
 * max age (2 s ± 10%, the planner's budget and deferral as in the proxy); a drained client
 * reconnects at its next RPC and lands where least connection sends it. Prints the share of
 * clients that did not reach every backend in 30 s, and what that means for a check that all of
 * them do.
 *
 *   node_modules/.bin/node scripts/simulate-coverage.ts [trials] [backends]
 */
import { LeastConnBalancer } from '../dist/balancer/least-conn.js';
import { DrainPlanner } from '../dist/drain/planner.js';

const trials = Number(process.argv[2] ?? 200);
const backends = Number(process.argv[3] ?? 3);
const CLIENTS = 20;
const RPC_INTERVAL_MS = 100;
const DURATION_MS = 30_000;

function endpoint(i: number) {
  const address = `10.0.0.${i}`;
  return {
    key: `${address}:9000`,
    address,
    port: 9000,
    ready: true,
    serving: true,
    terminating: false,
    state: 'ready' as const,
    nodeName: undefined,
    zone: undefined,
    forZones: [],
    forNodes: [],
    targetRef: undefined,
    eligible: true,
  };
}

interface SimConn {
  readonly id: number;
  readonly ep: ReturnType<LeastConnBalancer['pick']> & object;
  closeAt: number;
}

let missed = 0;
for (let t = 0; t < trials; t++) {
  let now = 0;
  const eps = Array.from({ length: backends }, (_, i) => endpoint(i + 1));
  const balancer = new LeastConnBalancer({ now: () => now });
  balancer.update(eps);
  const planner = new DrainPlanner({
    maxAgeMs: 2000,
    ageJitter: 0.1,
    budget: { maxConcurrent: { percent: 10 }, ratePerSec: 20 },
    rebalanceThreshold: 1.2,
    random: Math.random,
  });
  planner.setEndpoints(
    's',
    eps.map((e) => ({ key: e.key, weight: 1 })),
    0,
  );
  // The proxy's test: would a client drained from `key` come straight back?
  const wouldReturn = (_port: string, key: string): boolean => balancer.wouldPickAgain(key);
  const conns = new Map<number, SimConn>();
  const clients = Array.from({ length: CLIENTS }, () => ({
    conn: undefined as SimConn | undefined,
    visited: new Set<string>(),
    next: Math.random() * RPC_INTERVAL_MS,
  }));
  let id = 0;
  const open = (c: (typeof clients)[number]): void => {
    const ep = balancer.pick();
    if (ep === undefined) return;
    balancer.connected(ep);
    const conn = { id: ++id, ep, closeAt: Number.POSITIVE_INFINITY };
    conns.set(conn.id, conn);
    c.conn = conn;
    c.visited.add(ep.key);
    planner.add(conn.id, 's', ep.key, now, now);
  };
  clients.forEach(open);
  for (; now < DURATION_MS; now += 5) {
    if (now % 100 === 0) {
      for (const d of planner.tick(now, wouldReturn)) {
        const conn = conns.get(d.id) as SimConn;
        balancer.startDraining(conn.ep);
        conn.closeAt = now + 5;
        for (const c of clients) if (c.conn === conn) c.conn = undefined;
      }
    }
    for (const c of clients) {
      if (now < c.next) continue;
      c.next = now + RPC_INTERVAL_MS;
      if (c.conn === undefined) open(c);
    }
    for (const conn of [...conns.values()]) {
      if (conn.closeAt > now) continue;
      balancer.closed(conn.ep, true);
      planner.remove(conn.id);
      conns.delete(conn.id);
    }
  }
  missed += clients.filter((c) => c.visited.size < backends).length;
}
const share = missed / (trials * CLIENTS);
console.log(
  `${trials} runs of ${CLIENTS} clients over ${backends} backends for ${DURATION_MS / 1000} s:`,
);
console.log(`  clients that missed a backend: ${(share * 100).toFixed(2)}%`);
console.log(
  `  runs in which at least one did: ${((1 - (1 - share) ** CLIENTS) * 100).toFixed(1)}%`,
);
