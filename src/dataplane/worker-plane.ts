import type { SharedSlots } from '../balancer/least-conn.js';
import { SharedCounts } from '../balancer/shared-counts.js';
import { DrainController } from '../drain/controller.js';
import { describe as describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Connection } from '../proxy/connection.js';
import { ConnectionLog } from '../proxy/connection-log.js';
import {
  ServicePortProxy,
  bump,
  type ServicePortProxyOptions,
} from '../proxy/service-port-proxy.js';
import { TimeoutSweeper } from '../proxy/timeouts.js';
import type { ServicePort } from '../servicetable/types.js';
import type {
  FromWorker,
  H2Event,
  PortSnapshot,
  ToWorker,
  WorkerInit,
  WorkerSnapshot,
} from './protocol.js';

/** Closed-connection ages and drain durations kept between two snapshots, at most. */
const SAMPLES_MAX = 100_000;

/**
 * The data path of one worker thread: a listener per Service port (SO_REUSEPORT, next to the
 * other workers'), its own connections, and their byte copy and drains. It applies the tables
 * and carries out the commands the main thread sends (protocol.ts), counts in the shared slots,
 * drains on its own what needs no planning (leaving endpoints, idle connections, shutdown), and
 * tells the main thread about its h2c connections so that max age and rebalance are planned on
 * node-wide counts.
 */
export class WorkerPlane {
  readonly #init: WorkerInit;
  readonly #send: (m: FromWorker) => void;
  readonly #log: Logger;
  readonly #counts: SharedCounts;
  readonly #slots = new Map<string, ReadonlyMap<string, number>>();
  readonly #shared = new Map<string, SharedSlots>();
  readonly #ports = new Map<string, ServicePortProxy>();
  readonly #retired = new Set<ServicePortProxy>();
  readonly #portOpts: ServicePortProxyOptions;
  readonly #drains: DrainController;
  readonly #timeouts: TimeoutSweeper;
  /** h2c connections the main thread plans for, by id. */
  readonly #tracked = new Map<number, Connection>();
  readonly #reportedDraining = new Set<number>();
  #events: H2Event[] = [];
  #flushScheduled = false;
  readonly faults = new Map<string, number>();
  readonly #loggedFaults = new Set<string>();
  #ages = new Map<string, number[]>();
  #drainSeconds = new Map<string, number[]>();
  #stopping = false;

  constructor(init: WorkerInit, send: (m: FromWorker) => void, logger: Logger) {
    this.#init = init;
    this.#send = send;
    this.#log = logger;
    this.#counts = new SharedCounts(init.counts);
    const now = Date.now;
    const connLog = new ConnectionLog(logger, now);
    this.#drains = new DrainController(
      {
        // Max age and rebalance are the main thread's (node-wide counts): off here.
        maxConnectionAgeMs: 0,
        rebalanceThreshold: 0,
        drainGraceMs: init.drainGraceMs,
        drainMaxConcurrent: { percent: 100 },
        drainRatePerSec: 0,
      },
      {
        now,
        random: Math.random,
        logger,
        ports: { get: (k) => this.#ports.get(k), servicePorts: () => this.#servicePorts() },
      },
    );
    this.#portOpts = {
      connectTimeoutMs: init.connectTimeoutMs,
      maxConnectAttempts: init.maxConnectAttempts,
      slowStartWindowMs: init.slowStartWindowMs,
      h2: init.h2,
      now,
      random: Math.random,
      sharedSlots: (sp) => this.#sharedFor(sp),
      onFault: (owner, point, err) => this.#onFault(owner, point, err),
      observer: {
        established: (conn, owner) => connLog.established(conn, owner),
        acceptError: (code, owner) => connLog.acceptError(code, owner),
        protocolKnown: (conn, owner, desync) => {
          connLog.protocolKnown(conn, owner, desync);
          this.#drains.protocolKnown(conn, owner);
          this.#protocolKnown(conn, owner);
        },
        drainEnded: (_conn, _owner, end) => sample(this.#drainSeconds, end.outcome, end.seconds),
        closed: (conn, owner) => {
          connLog.closed(conn, owner);
          this.#drains.closed(conn, owner);
          sample(this.#ages, conn.protocol, (now() - conn.openedAt) / 1000);
          this.#untrack(conn.id);
          if (owner.connections.size === 0) this.#retired.delete(owner);
        },
      },
    };
    this.#timeouts = new TimeoutSweeper({
      halfClosedMs: init.halfClosedTimeoutMs,
      idleMs: init.idleTimeoutMs,
      now,
      servicePorts: () => this.#servicePorts(),
      drainIdle: (conn, owner) => {
        if (this.#drains.drainIdle(conn, owner)) this.#noteDraining(conn);
      },
    });
    this.#timeouts.start();
  }

  *#servicePorts(): IterableIterator<ServicePortProxy> {
    yield* this.#ports.values();
    yield* this.#retired;
  }

  /** Handles one message of the main thread. */
  handle(m: ToWorker): void {
    switch (m.type) {
      case 'table':
        return this.#applyTable(m.version, m.changed, m.removed, m.slots);
      case 'listen':
        return void this.#listen(m.id, m.servicePort, m.host, m.port);
      case 'unlisten':
        return void this.#unlisten(m.id, m.servicePort);
      case 'drain':
        for (const id of m.ids) this.#tracked.get(id)?.drain(m.reason, m.graceMs);
        return;
      case 'cluster':
        this.#ports.get(m.servicePort)?.balancer.setCluster(m.others, m.herdStep, m.reserved);
        return;
      case 'snapshot':
        return this.#send({ type: 'snapshot', id: m.id, snapshot: this.snapshot() });
      case 'shutdown':
        return void this.#shutdown(m.graceMs);
      case 'destroy-all':
        for (const p of this.#servicePorts()) for (const c of p.connections) c.destroy();
        return;
      case 'fault':
        if (this.#init.faultSeam) injectFault(m.kind);
        return;
      case 'drain-every':
        if (!this.#init.faultSeam) return;
        for (const p of this.#servicePorts())
          for (const c of p.connections) if (c.drain(m.reason, m.graceMs)) this.#noteDraining(c);
        return;
    }
  }

  #sharedFor(servicePort: string): SharedSlots {
    let s = this.#shared.get(servicePort);
    if (s === undefined) {
      s = {
        counts: this.#counts,
        region: this.#init.index,
        slotOf: (ep) => this.#slots.get(servicePort)?.get(ep),
      };
      this.#shared.set(servicePort, s);
    }
    return s;
  }

  #applyTable(
    version: number,
    changed: readonly ServicePort[],
    removed: readonly string[],
    slots: ReadonlyMap<string, ReadonlyMap<string, number>>,
  ): void {
    for (const [key, row] of slots) this.#slots.set(key, row);
    for (const key of removed) {
      this.#slots.delete(key);
      this.#shared.delete(key);
      const proxy = this.#ports.get(key);
      if (proxy !== undefined) this.#retire(proxy);
    }
    for (const sp of changed) {
      const key = sp.key;
      const current = this.#ports.get(key);
      if (current !== undefined && current.spec.clusterIP === sp.clusterIP) {
        if (current.spec.port === sp.port) {
          this.#endpointChanges(current, current.update(sp));
          continue;
        }
      }
      if (current !== undefined) this.#retire(current);
      this.#ports.set(key, new ServicePortProxy(sp, this.#portOpts));
    }
    this.#send({ type: 'applied', version });
  }

  #retire(proxy: ServicePortProxy): void {
    this.#ports.delete(proxy.servicePort);
    void proxy.stopListening();
    this.#endpointChanges(proxy, proxy.update({ ...proxy.spec, endpoints: [] }));
    if (proxy.connections.size > 0) this.#retired.add(proxy);
  }

  #endpointChanges(proxy: ServicePortProxy, changes: ReturnType<ServicePortProxy['update']>): void {
    if (changes.length === 0) return;
    this.#drains.endpointChanges(proxy, changes);
    for (const conn of proxy.connections) if (conn.draining) this.#noteDraining(conn);
  }

  async #listen(id: number, servicePort: string, host: string, port: number): Promise<void> {
    const proxy = this.#ports.get(servicePort);
    if (proxy === undefined || this.#stopping) {
      this.#send({
        type: 'listened',
        id,
        ok: false,
        code: 'ENOENT',
        message: 'no such Service port',
      });
      return;
    }
    if (proxy.listening) {
      this.#send({ type: 'listened', id, ok: true });
      return;
    }
    try {
      await proxy.listen(host, port);
      this.#send({ type: 'listened', id, ok: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.#send({ type: 'listened', id, ok: false, code: e.code ?? 'other', message: e.message });
    }
  }

  async #unlisten(id: number, servicePort: string): Promise<void> {
    await this.#ports.get(servicePort)?.stopListening();
    this.#send({ type: 'unlistened', id });
  }

  // ---- h2c connections, reported to the main thread's planner ----

  #protocolKnown(conn: Connection, owner: ServicePortProxy): void {
    if (conn.protocol !== 'h2c' || conn.endpoint === undefined) {
      this.#untrack(conn.id);
      return;
    }
    this.#tracked.set(conn.id, conn);
    this.#event([
      'open',
      conn.id,
      owner.servicePort,
      conn.endpoint.key,
      conn.openedAt,
      conn.draining ? 1 : 0,
    ]);
    if (conn.draining) this.#reportedDraining.add(conn.id);
  }

  #noteDraining(conn: Connection): void {
    if (!this.#tracked.has(conn.id) || this.#reportedDraining.has(conn.id)) return;
    this.#reportedDraining.add(conn.id);
    this.#event(['draining', conn.id]);
  }

  #untrack(id: number): void {
    this.#reportedDraining.delete(id);
    if (this.#tracked.delete(id)) this.#event(['gone', id]);
  }

  /** Events go out in one message per turn of the event loop, not one per connection. */
  #event(e: H2Event): void {
    this.#events.push(e);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const events = this.#events;
      this.#events = [];
      this.#send({ type: 'events', events });
    });
  }

  // ---- figures ----

  /** This worker's counters, for the main thread's metrics and /debug/state. */
  snapshot(): WorkerSnapshot {
    const ports: PortSnapshot[] = [];
    let connections = 0;
    for (const p of this.#servicePorts()) {
      connections += p.connections.size;
      if (!p.used) continue;
      const c = p.counters;
      let c2s = c.bytesClientToServer;
      let s2c = c.bytesServerToClient;
      const live = new Map<string, [number, number]>();
      for (const conn of p.connections) {
        c2s += conn.bytesClientToServer;
        s2c += conn.bytesServerToClient;
        const key = conn.endpoint?.key;
        if (key === undefined) continue;
        const b = live.get(key) ?? [0, 0];
        b[0] += conn.bytesClientToServer;
        b[1] += conn.bytesServerToClient;
        live.set(key, b);
      }
      ports.push({
        servicePort: p.servicePort,
        turnedAway: [...c.turnedAway],
        protocols: [...c.protocols],
        desyncs: [...c.desyncs],
        serverGoaways: c.serverGoaways,
        drainsStarted: [...c.drainsStarted],
        drainsEnded: [...c.drainsEnded],
        drainedStreamsNormal: c.drainedStreamsNormal,
        drainedStreamsReset: c.drainedStreamsReset,
        closes: [...c.closes],
        acceptErrors: [...c.acceptErrors],
        bytesClientToServer: c2s,
        bytesServerToClient: s2c,
        connections: p.connections.size,
        faults: [...p.faults],
        endpoints: [...p.endpointStats()].map((ep) => {
          const b = live.get(ep.key) ?? [0, 0];
          return [
            ep.key,
            ep.total,
            [...ep.connectFailures],
            ep.bytesClientToServer + b[0],
            ep.bytesServerToClient + b[1],
          ];
        }),
      });
    }
    const ages = [...this.#ages];
    const drainSeconds = [...this.#drainSeconds];
    this.#ages = new Map();
    this.#drainSeconds = new Map();
    return {
      ports,
      faults: [...this.faults],
      ages,
      drainSeconds,
      connections,
      heapUsed: process.memoryUsage().heapUsed,
    };
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#ports.values()].map((p) => p.stopListening()));
    this.#drains.shutdown(graceMs);
    const open = (): number => {
      let n = 0;
      for (const p of this.#servicePorts()) n += p.connections.size;
      return n;
    };
    const deadline = Date.now() + graceMs;
    while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const left = open();
    for (const p of this.#servicePorts()) for (const c of p.connections) c.destroy();
    this.#timeouts.stop();
    this.#send({ type: 'stopped', left });
  }

  #onFault(owner: ServicePortProxy, point: string, err: unknown): void {
    bump(this.faults, point);
    const message = err instanceof Error ? err.message : String(err);
    const key = `${point} ${message}`;
    if (this.#loggedFaults.has(key) || this.#loggedFaults.size >= 1000) return;
    this.#loggedFaults.add(key);
    this.#log.error(
      { servicePort: owner.servicePort, point, err: describeError(err) },
      'connection handler failed; that connection was closed, the others go on (logged once)',
    );
  }
}

function sample(map: Map<string, number[]>, key: string, value: number): void {
  let list = map.get(key);
  if (list === undefined) map.set(key, (list = []));
  if (list.length < SAMPLES_MAX) list.push(value);
}

/** The test seam's faults: an uncaught exception, or growing the heap past its limit. */
function injectFault(kind: 'throw' | 'heap'): void {
  if (kind === 'throw') {
    setImmediate(() => {
      throw new Error('injected fault (test seam)');
    });
    return;
  }
  const hog: number[][] = [];
  const grow = (): void => {
    for (let i = 0; i < 64; i++) hog.push(new Array<number>(16_384).fill(i));
    setImmediate(grow);
  };
  grow();
}
