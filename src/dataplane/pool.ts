import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SharedCounts, SlotTable } from '../balancer/shared-counts.js';
import { describe as describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RemoteListeners } from '../proxy/service-port-proxy.js';
import type { ServicePort, ServiceTable } from '../servicetable/types.js';
import type { FromWorker, H2Event, ToWorker, WorkerInit, WorkerSnapshot } from './protocol.js';

/** What every worker starts with, besides its index and the shared counts. */
export type WorkerSettings = Omit<WorkerInit, 'index' | 'counts'>;

export interface WorkerPoolOptions {
  readonly workers: number;
  readonly settings: WorkerSettings;
  readonly counts: SharedCounts;
  readonly slots: SlotTable;
  readonly logger: Logger;
  /** V8 old-space limit of each worker; past it the worker is replaced. */
  readonly heapLimitMb: number;
  readonly random: () => number;
  /** A batch of a worker's h2c connection events (see protocol.ts). */
  readonly onEvents: (worker: number, events: readonly H2Event[]) => void;
  /** A worker is gone with its connections: forget what was known of them. */
  readonly onWorkerLost: (worker: number) => void;
}

/** Why a worker was replaced; a metric label, so a closed set. */
export const WorkerExit = {
  /** An exception nobody caught. */
  EXCEPTION: 'exception',
  /** Its heap passed the limit (ERR_WORKER_OUT_OF_MEMORY). */
  HEAP_LIMIT: 'heap_limit',
  /** It exited without an error event. */
  EXIT: 'exit',
} as const;
export type WorkerExit = (typeof WorkerExit)[keyof typeof WorkerExit];

/** Longest wait for a worker's answer to a listen or a snapshot. */
const REPLY_TIMEOUT_MS = 5_000;
const SNAPSHOT_TIMEOUT_MS = 2_000;
/** Replacement delay after a failure; doubles while workers keep failing, up to the max. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;
/** A worker that ran this long resets the replacement delay. */
const RESTART_RESET_MS = 10_000;

interface Pending {
  readonly resolve: (m: FromWorker) => void;
  readonly timer: NodeJS.Timeout;
}

interface Slot {
  readonly worker: Worker;
  readonly startedAt: number;
  ready: boolean;
  applied: number;
  readonly pending: Map<number, Pending>;
  exit: WorkerExit | undefined;
}

/** Figures of the pool for metrics and /debug/state. */
export interface PoolStats {
  /** Workers replaced, by why. */
  readonly restarts: Map<WorkerExit, number>;
  /** Connections the replaced workers held (lost with them). */
  lostConnections: number;
}

/**
 * Where the worker's compiled entry is: next to this module in dist/, or, when this module runs
 * from its TypeScript source (the tests), in the dist/ built from it.
 */
function workerEntry(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../dist/dataplane/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error('the worker entry (dist/dataplane/worker.js) is not built: run npm run build');
}

/**
 * The main thread's side of the data-path workers: starts them, sends them the tables and
 * listener changes in order, carries drain and cluster commands, gathers their figures, and
 * replaces a worker that fails (its connections are lost: counted, logged once per failure,
 * taken out of the shared counts); the others keep accepting the whole time.
 */
export class WorkerPool implements RemoteListeners {
  readonly #opts: WorkerPoolOptions;
  readonly #slots: (Slot | undefined)[];
  readonly #entry: URL;
  /** Listeners every worker must have, by Service port: a replacement binds them again. */
  readonly #listeners = new Map<string, { host: string; port: number }>();
  #table: ServiceTable | undefined;
  #version = 0;
  #nextId = 1;
  #stopping = false;
  #restartDelay = RESTART_MIN_MS;
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #refreshing: Promise<WorkerSnapshot[]> | undefined;
  readonly stats: PoolStats = { restarts: new Map(), lostConnections: 0 };

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#slots = new Array<Slot | undefined>(opts.workers).fill(undefined);
    this.#entry = workerEntry();
  }

  get size(): number {
    return this.#slots.length;
  }

  /**
   * Starts every worker; resolves once all are ready. Rejects when one ends before it is ready
   * (a broken install: nothing would accept connections); the others are ended too.
   */
  async start(): Promise<void> {
    this.#starting = true;
    try {
      await Promise.all(this.#slots.map((_, i) => this.#spawn(i)));
    } finally {
      this.#starting = false;
    }
    const failed = this.#slots.findIndex((s) => s === undefined || !s.ready);
    if (failed >= 0) {
      await this.terminate();
      throw new Error(`data-path worker ${failed} ended before it was ready (see the log)`);
    }
  }

  #starting = false;

  /** Workers running and ready now. */
  get ready(): number {
    return this.#slots.filter((s) => s?.ready === true).length;
  }

  #spawn(index: number): Promise<void> {
    const init: WorkerInit = { ...this.#opts.settings, index, counts: this.#opts.counts.init };
    const worker = new Worker(this.#entry, {
      workerData: init,
      resourceLimits: { maxOldGenerationSizeMb: this.#opts.heapLimitMb },
      // The worker's own stdout/stderr (pino writes to fd 1 directly) need no piping.
      stdout: false,
      stderr: false,
      name: `data-path-${index}`,
    });
    const slot: Slot = {
      worker,
      startedAt: Date.now(),
      ready: false,
      applied: 0,
      pending: new Map(),
      exit: undefined,
    };
    this.#slots[index] = slot;
    return new Promise((resolve) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          slot.ready = true;
          this.#catchUp(index, slot);
          resolve();
          return;
        }
        this.#onMessage(index, slot, m);
      });
      worker.on('error', (err: Error & { code?: string }) => {
        slot.exit =
          err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? WorkerExit.HEAP_LIMIT : WorkerExit.EXCEPTION;
        this.#opts.logger.error(
          { worker: index, reason: slot.exit, err: describeError(err) },
          'data-path worker failed',
        );
      });
      worker.on('exit', () => {
        resolve();
        this.#onExit(index, slot);
      });
    });
  }

  /** A new worker (a replacement) gets the current table and every listener. */
  #catchUp(index: number, slot: Slot): void {
    const table = this.#table;
    if (table !== undefined) {
      this.#post(slot, {
        type: 'table',
        version: this.#version,
        changed: [...table.ports.values()],
        removed: [],
        slots: this.#slotRows(table.ports.keys()),
      });
    }
    for (const [servicePort, l] of this.#listeners) {
      void this.#request(slot, (id) => ({ type: 'listen', id, servicePort, ...l })).then((m) => {
        if (m.type === 'listened' && !m.ok)
          this.#opts.logger.error(
            { worker: index, servicePort, code: m.code },
            'a replacement worker cannot bind a listener; the other workers serve it',
          );
      });
    }
  }

  #onExit(index: number, slot: Slot): void {
    for (const p of slot.pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ type: 'stopped', left: 0 });
    }
    slot.pending.clear();
    if (this.#slots[index] !== slot) return;
    this.#slots[index] = undefined;
    // At start a worker that cannot run is not replaced: start() fails instead.
    if (this.#stopping || this.#starting) return;
    const reason = slot.exit ?? WorkerExit.EXIT;
    // Its thread is gone: nothing writes its region of the shared counts any more.
    const lost = this.#opts.counts.forgetRegion(index, this.#opts.slots.used);
    this.stats.lostConnections += lost;
    this.stats.restarts.set(reason, (this.stats.restarts.get(reason) ?? 0) + 1);
    this.#opts.onWorkerLost(index);
    if (Date.now() - slot.startedAt > RESTART_RESET_MS) this.#restartDelay = RESTART_MIN_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(RESTART_MAX_MS, this.#restartDelay * 2);
    this.#opts.logger.error(
      { worker: index, reason, lostConnections: lost, restartInMs: delay },
      'data-path worker gone with its connections; replacing it (the other workers go on)',
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (!this.#stopping) void this.#spawn(index);
    }, delay);
    this.#restartTimers.add(timer);
  }

  #onMessage(index: number, slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'applied':
        slot.applied = m.version;
        this.#opts.slots.release(this.#appliedEverywhere());
        return;
      case 'events':
        this.#opts.onEvents(index, m.events);
        return;
      case 'listened':
      case 'unlistened':
      case 'snapshot': {
        const p = slot.pending.get(m.id);
        if (p === undefined) return;
        slot.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      case 'stopped':
      case 'ready':
        return;
    }
  }

  /** The oldest table version every running worker has applied. */
  #appliedEverywhere(): number {
    let v = this.#version;
    for (const s of this.#slots) if (s !== undefined && s.ready) v = Math.min(v, s.applied);
    return v;
  }

  #post(slot: Slot, m: ToWorker): void {
    try {
      slot.worker.postMessage(m);
    } catch (err) {
      // A worker in the middle of exiting: its replacement gets everything at its start.
      this.#opts.logger.warn({ err: describeError(err) }, 'cannot message a data-path worker');
    }
  }

  #request(
    slot: Slot,
    make: (id: number) => ToWorker,
    timeoutMs = REPLY_TIMEOUT_MS,
  ): Promise<FromWorker> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        slot.pending.delete(id);
        resolve({ type: 'listened', id, ok: false, code: 'ETIMEDOUT', message: 'no answer' });
      }, timeoutMs);
      timer.unref();
      slot.pending.set(id, { resolve, timer });
      this.#post(slot, make(id));
    });
  }

  #live(): Slot[] {
    return this.#slots.filter((s): s is Slot => s !== undefined && s.ready);
  }

  #slotRows(keys: Iterable<string>): Map<string, ReadonlyMap<string, number>> {
    const rows = new Map<string, ReadonlyMap<string, number>>();
    const map = this.#opts.slots.map;
    for (const k of keys) {
      const row = map.get(k);
      if (row !== undefined) rows.set(k, new Map(row));
    }
    return rows;
  }

  /**
   * Sends a new table: assigns the slots of new endpoints, then sends each worker the Service
   * ports that changed (by identity: the table builder keeps unchanged ones) and those removed.
   */
  publish(table: ServiceTable): void {
    const before = this.#table;
    this.#table = table;
    const version = ++this.#version;
    const changed: ServicePort[] = [];
    for (const [key, sp] of table.ports) if (before?.ports.get(key) !== sp) changed.push(sp);
    const removed: string[] = [];
    for (const key of before?.ports.keys() ?? []) if (!table.ports.has(key)) removed.push(key);
    this.#opts.slots.assign(
      version,
      new Map(changed.map((sp) => [sp.key, sp.endpoints.map((ep) => ep.key)])),
      this.#opts.random,
      removed,
    );
    const m: ToWorker = {
      type: 'table',
      version,
      changed,
      removed,
      slots: this.#slotRows(changed.map((sp) => sp.key)),
    };
    for (const s of this.#live()) this.#post(s, m);
  }

  async listen(servicePort: string, host: string, port: number): Promise<void> {
    const live = this.#live();
    const answers = await Promise.all(
      live.map((s) => this.#request(s, (id) => ({ type: 'listen', id, servicePort, host, port }))),
    );
    const failed = answers.find((m) => m.type === 'listened' && !m.ok);
    if (failed !== undefined && failed.type === 'listened') {
      // All or none: a port some workers serve and others not would still work, but a bind
      // error (EADDRINUSE from a foreign process) is the same for every worker.
      await Promise.all(
        live.map((s) => this.#request(s, (id) => ({ type: 'unlisten', id, servicePort }))),
      );
      throw Object.assign(new Error(failed.message ?? 'listen failed'), { code: failed.code });
    }
    this.#listeners.set(servicePort, { host, port });
  }

  async unlisten(servicePort: string): Promise<void> {
    this.#listeners.delete(servicePort);
    await Promise.all(
      this.#live().map((s) => this.#request(s, (id) => ({ type: 'unlisten', id, servicePort }))),
    );
  }

  /** Drains connections `ids` of worker `index` (its own connection ids). */
  drain(index: number, ids: readonly number[], reason: string, graceMs: number): void {
    const s = this.#slots[index];
    if (s !== undefined) this.#post(s, { type: 'drain', ids, reason, graceMs });
  }

  /**
   * Cluster estimates for one Service port (see LeastConnBalancer.setCluster). Reservations
   * are dealt round the workers, so that each is used once.
   */
  setCluster(
    servicePort: string,
    others: ReadonlyMap<string, number> | undefined,
    herdStep: number,
    reserved: readonly string[],
  ): void {
    const live = this.#live();
    live.forEach((s, i) =>
      this.#post(s, {
        type: 'cluster',
        servicePort,
        others,
        herdStep,
        reserved: reserved.filter((_, j) => j % live.length === i),
      }),
    );
  }

  /**
   * Every running worker's figures now. A worker that does not answer within 1 s (a busy one)
   * counts with its last answer, so that counters never go back; its closed connections'
   * samples are not repeated.
   */
  snapshots(): Promise<WorkerSnapshot[]> {
    this.#refreshing ??= Promise.all(
      this.#slots.map(async (s, index) => {
        if (s === undefined || !s.ready) return undefined;
        const m = await this.#request(s, (id) => ({ type: 'snapshot', id }), SNAPSHOT_TIMEOUT_MS);
        if (m.type === 'snapshot' && this.#slots[index] === s) {
          this.#lastSnapshot.set(s, m.snapshot);
          return m.snapshot;
        }
        const last = this.#lastSnapshot.get(s);
        return last === undefined ? undefined : { ...last, ages: [], drainSeconds: [] };
      }),
    ).then((answers) => {
      this.#refreshing = undefined;
      return answers.filter((a): a is WorkerSnapshot => a !== undefined);
    });
    return this.#refreshing;
  }

  /** The last answer of each worker (gone with the worker). */
  readonly #lastSnapshot = new WeakMap<Slot, WorkerSnapshot>();

  /**
   * Stops accepting everywhere, drains every connection (GOAWAY for h2c), closes what is left
   * at the grace deadline, then ends the workers. Resolves with the connections closed at the
   * deadline.
   */
  async shutdown(graceMs: number): Promise<number> {
    this.#stopping = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    const live = this.#slots.filter((s): s is Slot => s !== undefined);
    const left = await Promise.all(
      live.map(
        (s) =>
          new Promise<number>((resolve) => {
            const timer = setTimeout(() => resolve(0), graceMs + 2_000);
            s.worker.on('message', (m: FromWorker) => {
              if (m.type !== 'stopped') return;
              clearTimeout(timer);
              resolve(m.left);
            });
            s.worker.once('exit', () => {
              clearTimeout(timer);
              resolve(0);
            });
            this.#post(s, { type: 'shutdown', graceMs });
          }),
      ),
    );
    await this.terminate();
    return left.reduce((a, b) => a + b, 0);
  }

  /** Closes every connection now (a second signal). */
  destroyAll(): void {
    for (const s of this.#live()) this.#post(s, { type: 'destroy-all' });
  }

  /** Ends every worker at once. */
  async terminate(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    await Promise.all(this.#slots.map((s) => s?.worker.terminate()));
  }

  /** Test seam: drains every connection of every worker now. */
  drainEvery(reason: string, graceMs: number): void {
    for (const s of this.#live()) this.#post(s, { type: 'drain-every', reason, graceMs });
  }

  /** Test seam: makes worker `index` fail (`throw`: an uncaught exception; `heap`: OOM). */
  injectFault(index: number, kind: 'throw' | 'heap'): void {
    const s = this.#slots[index];
    if (s !== undefined) this.#post(s, { type: 'fault', kind });
  }
}
