import type { EndpointCounts, NodeReport } from './report.js';

/** One peer's latest report and when it arrived. */
export interface PeerEntry {
  readonly report: NodeReport;
  /** The sender's signed timestamp (orders reports of one node; older ones are ignored). */
  readonly sentAt: number;
  /** When this node received it (its own clock). */
  readonly receivedAt: number;
}

/** A peer as /debug/state and the metrics show it. */
export interface PeerInfo {
  readonly node: string;
  readonly ageMs: number;
  readonly fresh: boolean;
}

/**
 * What this node knows of the other nodes' connection counts: each peer's latest report. A report
 * older than `staleAfterMs` no longer counts (its node may have gone, with its connections);
 * the view as a whole is fresh while at least one peer's report is. Reports of this node itself
 * are never stored (a peer list may name this node). Pure; the clock is passed in.
 */
export class ClusterView {
  readonly self: string;
  readonly staleAfterMs: number;
  readonly #peers = new Map<string, PeerEntry>();

  constructor(self: string, staleAfterMs: number) {
    this.self = self;
    this.staleAfterMs = staleAfterMs;
  }

  /**
   * Stores `report` unless it is this node's own or not newer than the one held for its node.
   * Returns whether it was stored.
   */
  accept(report: NodeReport, sentAt: number, now: number): boolean {
    if (report.node === this.self) return false;
    const cur = this.#peers.get(report.node);
    if (cur !== undefined && sentAt <= cur.sentAt) return false;
    this.#peers.set(report.node, { report, sentAt, receivedAt: now });
    return true;
  }

  /** Drops reports so old they will never count again (a node that left for good). */
  prune(now: number): void {
    for (const [node, e] of this.#peers)
      if (now - e.receivedAt > 10 * this.staleAfterMs) this.#peers.delete(node);
  }

  #fresh(e: PeerEntry, now: number): boolean {
    return now - e.receivedAt <= this.staleAfterMs;
  }

  /** Fresh peer reports, in node-name order. */
  freshReports(now: number): NodeReport[] {
    return this.freshEntries(now).map((e) => e.report);
  }

  /** Fresh peer entries (report, when it was sent and received), in node-name order. */
  freshEntries(now: number): PeerEntry[] {
    const out: PeerEntry[] = [];
    for (const e of this.#peers.values()) if (this.#fresh(e, now)) out.push(e);
    return out.sort((a, b) =>
      a.report.node < b.report.node ? -1 : a.report.node > b.report.node ? 1 : 0,
    );
  }

  /** Whether any peer's report is fresh: if not, the node falls back to its own counts. */
  isFresh(now: number): boolean {
    for (const e of this.#peers.values()) if (this.#fresh(e, now)) return true;
    return false;
  }

  /** Milliseconds since the newest peer report arrived; undefined before the first. */
  ageMs(now: number): number | undefined {
    let newest: number | undefined;
    for (const e of this.#peers.values())
      if (newest === undefined || e.receivedAt > newest) newest = e.receivedAt;
    return newest === undefined ? undefined : now - newest;
  }

  /** Every peer known, in node-name order. */
  peers(now: number): PeerInfo[] {
    return [...this.#peers.values()]
      .map((e) => ({ node: e.report.node, ageMs: now - e.receivedAt, fresh: this.#fresh(e, now) }))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  /** The fresh peers' counts of one Service port, by node (nodes without it are left out). */
  perNode(servicePort: string, now: number): Map<string, Readonly<Record<string, EndpointCounts>>> {
    const out = new Map<string, Readonly<Record<string, EndpointCounts>>>();
    for (const r of this.freshReports(now)) {
      const row = r.ports[servicePort];
      if (row !== undefined) out.set(r.node, row);
    }
    return out;
  }
}

/** Sums the active counts of several nodes' rows, by endpoint. */
export function sumActive(
  rows: Iterable<Readonly<Record<string, EndpointCounts>>>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const row of rows)
    for (const [ep, c] of Object.entries(row)) out.set(ep, (out.get(ep) ?? 0) + c[0]);
  return out;
}
