/**
 * Messages between the main thread and the data-path workers (worker threads). The main thread
 * owns the source, the service table, iptables, drain planning, metrics and the HTTP server; each
 * worker listens on every Service port with SO_REUSEPORT and accepts, picks, dials and copies its
 * own connections. Counts the balancer needs are in shared memory (balancer/shared-counts.ts);
 * everything else crosses here, never once per chunk of data.
 */
import type { SharedCountsInit } from '../balancer/shared-counts.js';
import type { ServicePort } from '../servicetable/types.js';
import type { LevelWithSilent } from 'pino';

/** Settings a worker starts with (workerData). */
export interface WorkerInit {
  /** This worker's place (0..workers-1): its region of the shared counts. */
  readonly index: number;
  readonly counts: SharedCountsInit;
  readonly logLevel: LevelWithSilent;
  readonly connectTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly slowStartWindowMs: number;
  readonly h2:
    | {
        readonly pingPayload: Uint8Array;
        readonly pingAckWaitMaxMs: number;
        readonly lingerMs: number;
      }
    | undefined;
  readonly halfClosedTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly drainGraceMs: number;
  /** Test seam, never set by the CLI: the worker obeys `fault` and `drain-every` messages. */
  readonly faultSeam: boolean;
}

/** Main → worker. */
export type ToWorker =
  | {
      readonly type: 'table';
      readonly version: number;
      /** Service ports new or changed since the last table this worker got. */
      readonly changed: readonly ServicePort[];
      /** Service ports gone since then. */
      readonly removed: readonly string[];
      /** For the changed ones: endpoint key → slot in the shared counts. */
      readonly slots: ReadonlyMap<string, ReadonlyMap<string, number>>;
    }
  | {
      readonly type: 'listen';
      readonly id: number;
      readonly servicePort: string;
      readonly host: string;
      readonly port: number;
    }
  | { readonly type: 'unlisten'; readonly id: number; readonly servicePort: string }
  /** Carry out drains the main thread planned (max age, rebalance): connection ids of this worker. */
  | {
      readonly type: 'drain';
      readonly ids: readonly number[];
      readonly reason: string;
      readonly graceMs: number;
    }
  | {
      readonly type: 'cluster';
      readonly servicePort: string;
      readonly others: ReadonlyMap<string, number> | undefined;
      readonly herdStep: number;
      readonly reserved: readonly string[];
    }
  | { readonly type: 'snapshot'; readonly id: number }
  /** Stop accepting, drain everything, close what is left at the deadline, then report. */
  | { readonly type: 'shutdown'; readonly graceMs: number }
  | { readonly type: 'destroy-all' }
  /** Test seam (WorkerInit.faultSeam): make this worker fail. */
  | { readonly type: 'fault'; readonly kind: 'throw' | 'heap' }
  /** Test seam (WorkerInit.faultSeam): drain every connection now. */
  | { readonly type: 'drain-every'; readonly reason: string; readonly graceMs: number };

/** Counters of one Service port in one worker (see ServicePortCounters), as plain entries. */
export interface PortSnapshot {
  readonly servicePort: string;
  readonly turnedAway: [string, number][];
  readonly protocols: [string, number][];
  readonly desyncs: [string, number][];
  readonly serverGoaways: number;
  readonly drainsStarted: [string, number][];
  readonly drainsEnded: [string, number][];
  readonly drainedStreamsNormal: number;
  readonly drainedStreamsReset: number;
  readonly closes: [string, number][];
  readonly acceptErrors: [string, number][];
  /** Bytes of ended connections plus those of open ones now. */
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
  readonly connections: number;
  readonly faults: [string, number][];
  /** Per endpoint: [key, total, connect failures by reason, bytes c→s, bytes s→c]. */
  readonly endpoints: [string, number, [string, number][], number, number][];
}

/** A worker's figures, answered to `snapshot`. */
export interface WorkerSnapshot {
  readonly ports: PortSnapshot[];
  /** Connection handler faults over every Service port, by point. */
  readonly faults: [string, number][];
  /** Ages (seconds) of connections closed since the last snapshot, by protocol. */
  readonly ages: [string, number[]][];
  /** Durations (seconds) of drains ended since the last snapshot, by outcome. */
  readonly drainSeconds: [string, number[]][];
  readonly connections: number;
  readonly heapUsed: number;
}

/**
 * Events of the h2c connections (the ones the main thread's planner ages and rebalances), in
 * batches: `[kind, id, ...]` tuples.
 * - `open`: [id, servicePort, endpoint, openedAt, draining(0|1)]
 * - `gone`: [id] (closed, or lost sync and went opaque)
 * - `draining`: [id] (the worker drained it itself: leaving endpoint, idle, shutdown)
 */
export type H2Event =
  | readonly ['open', number, string, string, number, number]
  | readonly ['gone', number]
  | readonly ['draining', number];

/** Worker → main. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'applied'; readonly version: number }
  | {
      readonly type: 'listened';
      readonly id: number;
      readonly ok: boolean;
      readonly code?: string;
      readonly message?: string;
    }
  | { readonly type: 'unlistened'; readonly id: number }
  | { readonly type: 'snapshot'; readonly id: number; readonly snapshot: WorkerSnapshot }
  | { readonly type: 'events'; readonly events: readonly H2Event[] }
  | { readonly type: 'stopped'; readonly left: number };
