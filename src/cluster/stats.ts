/**
 * Counters of the cluster view, plain fields read at scrape time (metrics) and by /debug/state.
 * Written only by ClusterSync and its request handler.
 */
export class ClusterStats {
  /** Exchanges with peers this node started, by result (ok, timeout, error, unauthorized, bad_report). */
  readonly exchanges = new Map<string, number>();
  /** Peer requests refused, by reason (missing, bad_signature, stale), and peer answers whose signature failed (response). */
  readonly authFailures = new Map<string, number>();
  /** Reports from peers that could not be used, by reason (json, shape, limit, too_large). */
  readonly badReports = new Map<string, number>();
  /** Times the node fell back from the cluster view to its own counts. */
  fallbacks = 0;
  /** Whether the last exchange with each configured peer (by address) succeeded. */
  readonly peerUp = new Map<string, boolean>();
}

export function bumpStat(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
