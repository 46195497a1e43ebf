import type { Endpoint, EndpointState } from '../servicetable/types.js';
import { Cell, type SlotRef } from './shared-counts.js';

const NO_FAILURES: ReadonlyMap<string, number> = new Map();

/** An endpoint's state as the balancer sees it: the table's state, or `removed` once gone. */
export type EndpointStatus = EndpointState | 'removed';

/**
 * Live counters of one endpoint of one Service port. Plain fields, read at scrape time by the
 * metrics and /debug/state; written only by the balancer that owns it (counts) and by the
 * proxy's connection code through the balancer's methods, never directly.
 */
export class EndpointStats {
  readonly key: string;
  /** The latest table entry for this endpoint (kept after removal, for display). */
  endpoint: Endpoint;
  status: EndpointStatus;
  /** May take new connections (table choice, not ejected state). */
  eligible = false;
  /** Effective weight: 1, or less while slow start ramps it up. Never 0. */
  weight = 1;
  /**
   * Where the counts live when the data path runs on worker threads (see shared-counts.ts):
   * `active`, `draining` and `openStreams` are then the node's, over every thread. Unset: plain
   * fields of this thread.
   */
  #shared: SlotRef | undefined;
  #active = 0;
  #draining = 0;
  #openStreams = 0;
  /**
   * Active connections the other nodes hold to this endpoint, as the cluster view last said,
   * plus the picks they are expected to have made since (see LeastConnBalancer.setRemote).
   * 0 when the cluster view is off or stale. Balancer-private.
   */
  remote = 0;
  /** Connections established since the endpoint was first seen. */
  total = 0;
  #connectFailures: Map<string, number> | undefined;
  /** Bytes of connections that have ended; live connections add theirs at read time. */
  bytesClientToServer = 0;
  bytesServerToClient = 0;

  /** Position in the balancer's heap, -1 when not in it. Balancer-private. */
  heapIndex = -1;
  /**
   * Tie-break order (thread-local counts): lower goes first; bumped on every pick (rotation).
   * Balancer-private. With shared counts the order is the slot's (see shared-counts.ts).
   */
  seq = 0;
  /** Connect failures in a row; reset by a successful connect. Balancer-private. */
  consecutiveFailures = 0;
  /** Until when (clock ms) the endpoint is skipped after connect failures. Balancer-private. */
  ejectedUntil = 0;
  /** When (clock ms) it last turned ready, for slow start; -1 when not ramping. */
  rampStart = -1;

  constructor(endpoint: Endpoint) {
    this.key = endpoint.key;
    this.endpoint = endpoint;
    this.status = endpoint.state;
  }

  /** Counts this endpoint in shared memory from now on (before any connection counts). */
  share(ref: SlotRef): void {
    this.#shared = ref;
  }

  get shared(): SlotRef | undefined {
    return this.#shared;
  }

  /** Connections open and not draining, dials in progress included. */
  get active(): number {
    const s = this.#shared;
    return s === undefined ? this.#active : s.counts.total(s.slot, Cell.ACTIVE);
  }

  /** Connections being drained. */
  get draining(): number {
    const s = this.#shared;
    return s === undefined ? this.#draining : s.counts.total(s.slot, Cell.DRAINING);
  }

  /** Open HTTP/2 streams over this endpoint's h2c connections. */
  get openStreams(): number {
    const s = this.#shared;
    return s === undefined ? this.#openStreams : s.counts.total(s.slot, Cell.STREAMS);
  }

  /** Balancer-private: counts `n` more active connections (atomically when shared). */
  addActive(n: number): void {
    const s = this.#shared;
    if (s === undefined) this.#active += n;
    else s.counts.add(s.slot, s.region, Cell.ACTIVE, n);
  }

  /** Balancer-private: counts `n` more draining connections. */
  addDraining(n: number): void {
    const s = this.#shared;
    if (s === undefined) this.#draining += n;
    else s.counts.add(s.slot, s.region, Cell.DRAINING, n);
  }

  /** Open streams changed by `delta` (the connection's HTTP/2 tracking). */
  addStreams(delta: number): void {
    const s = this.#shared;
    if (s === undefined) this.#openStreams += delta;
    else s.counts.add(s.slot, s.region, Cell.STREAMS, delta);
  }

  /** Dials that failed, by reason (none for most endpoints: the map is made at the first). */
  get connectFailures(): ReadonlyMap<string, number> {
    return this.#connectFailures ?? NO_FAILURES;
  }

  /** Counts a failed dial. Balancer-private. */
  countConnectFailure(reason: string): void {
    this.#connectFailures ??= new Map();
    this.#connectFailures.set(reason, (this.#connectFailures.get(reason) ?? 0) + 1);
  }

  /**
   * IPVS overhead per weight: `(active * 256 + draining) / weight`, with the other nodes'
   * estimated active connections added to `active` when the cluster view is on. Lower is better.
   */
  score(): number {
    return ((this.active + this.remote) * 256 + this.draining) / this.weight;
  }
}
