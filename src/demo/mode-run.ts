import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { EchoClientHandle, startGrpcBackend, type GrpcBackend } from './echo.js';
import { backendAddress, clientsOnNode, MODE_TITLES, nodeAddress, type ModeName } from './modes.js';
import type { ModeReport, NodeDrains, Sample } from './nodes-report.js';
import { nodeManifests, ProxyNode, type ManifestEndpoint } from './proxy-node.js';
import { RandomForwarder } from './random-forwarder.js';
import { skew } from './scenario.js';

const PORT = 50051;
const METRICS_PORT = 9901;

interface BackendState {
  readonly name: string;
  readonly backend: GrpcBackend;
  state: 'ready' | 'terminating' | 'removed';
}

/** Where one mode lives: its name, how many nodes, the files its nodes share. */
export interface ModeRunOptions {
  readonly mode: ModeName;
  readonly nodes: number;
  /** Where the nodes' manifests files go. */
  readonly dir: string;
  /** The shared secret of the cluster view's peers. */
  readonly secretFile: string;
}

/**
 * One mode of the demo: its backends (real grpc-js servers), its nodes (kube-proxy-like
 * forwarders for `random`, `kube-lc-proxy run` processes otherwise) and their clients, and what
 * they counted. Only the demo's run loop mutates it.
 */
export class ModeRun {
  readonly mode: ModeName;
  readonly backends: BackendState[] = [];
  readonly proxies: ProxyNode[] = [];
  readonly #forwarders: RandomForwarder[] = [];
  readonly #clients: EchoClientHandle[] = [];
  readonly #o: ModeRunOptions;
  ok = 0;
  failed = 0;
  readonly errors: Record<string, number> = {};
  readonly perBackend: Record<string, number> = {};
  /** Drains by reason over every node, and what each node's counter said at the last look. */
  readonly drains: Record<string, number> = {};
  readonly #drainsSeen = new Map<string, Record<string, number>>();
  readonly samples: Sample[] = [];
  #afterScaleOut: Record<string, number> | undefined;
  #afterScaleOutSkew: number | undefined;

  constructor(o: ModeRunOptions) {
    this.mode = o.mode;
    this.#o = o;
  }

  /** What its nodes are, for the narration. */
  get nodeKind(): string {
    return this.mode === 'random' ? 'forwarders' : 'proxy processes';
  }

  /** Starts `backends` backends, then the nodes; throws if a node does not come up. */
  async start(backends: number): Promise<void> {
    for (let n = 1; n <= backends; n++) await this.addBackend(n);
    const { mode, nodes, dir, secretFile } = this.#o;
    const names = Array.from({ length: nodes }, (_, k) => `node-${k + 1}`);
    if (mode === 'random') {
      for (let k = 1; k <= nodes; k++) {
        const f = new RandomForwarder(nodeAddress(mode, k), PORT, () =>
          this.backends
            .filter((b) => b.state === 'ready')
            .map((b) => `${b.backend.address}:${PORT}`),
        );
        await f.listen();
        this.#forwarders.push(f);
      }
      return;
    }
    const eps = this.#endpoints();
    const metrics = names.map((_, j) => `${nodeAddress(mode, j + 1)}:${METRICS_PORT}`);
    const started = await Promise.allSettled(
      names.map((name, k) =>
        ProxyNode.start(
          {
            name,
            address: nodeAddress(mode, k + 1),
            metricsPort: METRICS_PORT,
            file: join(dir, `${mode}-${name}.yaml`),
            peers:
              mode === 'cluster'
                ? { nodeName: name, peers: metrics.filter((_, j) => j !== k), secretFile }
                : undefined,
          },
          nodeManifests(nodeAddress(mode, k + 1), PORT, eps),
        ),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') this.proxies.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  /** Backend `n` (b<n>) becomes ready; `apply` tells the nodes. */
  async addBackend(n: number): Promise<void> {
    const backend = await startGrpcBackend(backendAddress(this.mode, n), PORT, `b${n}`);
    this.backends.push({ name: `b${n}`, backend, state: 'ready' });
  }

  /** Every proxy node gets the current endpoints; resolves once each one shows them. */
  async apply(): Promise<void> {
    const eps = this.#endpoints();
    await Promise.all(
      this.proxies.map((p, k) =>
        p.apply(nodeManifests(nodeAddress(this.mode, k + 1), PORT, eps), eps),
      ),
    );
  }

  /**
   * Starts the clients, spread evenly over the nodes, each with a long-lived channel to its
   * node's ClusterIP and an RPC every 1/rate s while `running()`. Returns their loops.
   */
  startClients(clients: number, rate: number, running: () => boolean): Promise<void>[] {
    const loops: Promise<void>[] = [];
    for (let k = 0; k < this.#o.nodes; k++) {
      for (let i = 0; i < clientsOnNode(k, this.#o.nodes, clients); i++) {
        const c = new EchoClientHandle(`${nodeAddress(this.mode, k + 1)}:${PORT}`);
        this.#clients.push(c);
        loops.push(this.#clientLoop(c, rate, running));
      }
    }
    return loops;
  }

  /** Open connections per backend that is still listed, as the backends count them. */
  connections(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const b of this.backends) if (b.state !== 'removed') out[b.name] = b.backend.openSessions;
    return out;
  }

  /** max/mean connections over the ready backends. */
  readySkew(): number {
    return skew(
      this.backends.filter((b) => b.state === 'ready').map((b) => b.backend.openSessions),
    );
  }

  /** Remembers the state the scale-out led to (just before the rolling update). */
  markAfterScaleOut(): void {
    this.#afterScaleOut = this.connections();
    this.#afterScaleOutSkew = this.readySkew();
  }

  /**
   * Reads each proxy's drain counters and returns what started since the last look. A proxy
   * that does not answer is tried `attempts` times, then left for the next look.
   */
  async pollDrains(attempts: number): Promise<NodeDrains[]> {
    const moved: NodeDrains[] = [];
    await Promise.all(
      this.proxies.map(async (p) => {
        let now: Record<string, number> | undefined;
        for (let i = 0; i < attempts && now === undefined; i++) {
          now = await p.drains().catch(() => undefined);
        }
        if (now === undefined) return;
        const before = this.#drainsSeen.get(p.name) ?? {};
        for (const [reason, n] of Object.entries(now)) {
          const d = n - (before[reason] ?? 0);
          if (d <= 0) continue;
          this.drains[reason] = (this.drains[reason] ?? 0) + d;
          moved.push({ node: p.name, reason, n: d });
        }
        this.#drainsSeen.set(p.name, now);
      }),
    );
    return moved;
  }

  /** The mode's report; `end` is its connections and skew when the run ended. */
  report(end: { connections: Record<string, number>; skew: number }): ModeReport {
    const served: Record<string, number> = {};
    for (const b of this.backends) served[b.name] = b.backend.served;
    const round3 = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      mode: this.mode,
      title: MODE_TITLES[this.mode],
      available: true,
      totalRpcs: this.ok + this.failed,
      failedRpcs: this.failed,
      errors: this.errors,
      skewAfterScaleOut:
        this.#afterScaleOutSkew === undefined ? null : round3(this.#afterScaleOutSkew),
      connectionsAfterScaleOut: this.#afterScaleOut ?? {},
      finalSkew: round3(end.skew),
      connectionsAtEnd: end.connections,
      drainsByReason: this.drains,
      rpcsPerBackend: this.perBackend,
      servedByBackend: served,
      samples: this.samples,
    };
  }

  /** Closes the clients (the caller waits for their loops), then the nodes and the backends. */
  closeClients(): void {
    for (const c of this.#clients) c.close();
  }

  async stop(): Promise<void> {
    this.closeClients();
    await Promise.all(this.proxies.map((p) => p.stop()));
    await Promise.all(this.#forwarders.map((f) => f.close()));
    await Promise.all(this.backends.map((b) => b.backend.close()));
  }

  /** Kills the proxy processes now (the demo was interrupted). */
  kill(): void {
    for (const p of this.proxies) p.kill();
  }

  #endpoints(): ManifestEndpoint[] {
    return this.backends
      .filter((b) => b.state !== 'removed')
      .map((b) => ({ address: b.backend.address, state: b.state as ManifestEndpoint['state'] }));
  }

  async #clientLoop(c: EchoClientHandle, rate: number, running: () => boolean): Promise<void> {
    const interval = 1000 / rate;
    await sleep(Math.random() * interval);
    while (running()) {
      const started = Date.now();
      try {
        const name = await c.who(0, 5_000);
        this.ok++;
        this.perBackend[name] = (this.perBackend[name] ?? 0) + 1;
      } catch (err) {
        this.failed++;
        const e = err as grpc.ServiceError;
        const key = `${e.code ?? '?'} ${e.details ?? e.message}`;
        this.errors[key] = (this.errors[key] ?? 0) + 1;
      }
      await sleep(Math.max(0, interval - (Date.now() - started)));
    }
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
