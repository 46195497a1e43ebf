/**
 * Why a list/watch cycle had to start again:
 * - `eof`: the server ended the watch cleanly (normal every 30-60 min; client-node re-watches
 *   from the last resourceVersion by itself).
 * - `expired`: 410 Expired/Gone, as an ERROR event or an HTTP status: the next cycle relists.
 * - `timeout`: client-node's 30 s idle timer on a watch, or our list timeout.
 * - `http-error`: any other non-2xx status on a list or watch.
 * - `network-error`: connection refused or reset, TLS failure, stream cut mid-body.
 * - `error-event`: the watch carried an ERROR event (not 410) and then ended.
 * - `other`: anything else (an unparsable list reply, a client-side exception).
 */
export const WATCH_RESTART_REASONS = [
  'eof',
  'expired',
  'timeout',
  'http-error',
  'network-error',
  'error-event',
  'other',
] as const;

/** See WATCH_RESTART_REASONS. */
export type WatchRestartReason = (typeof WATCH_RESTART_REASONS)[number];

/**
 * Counters of one informer (Services or EndpointSlices), kept as plain fields so the metrics
 * module can read them on scrape. Only the informer writes them; readers must not mutate.
 *
 * - `watchRestarts[reason]`: how often a list or watch ended and a new one followed. Failed
 *   lists count here too, under the reason they failed with.
 * - `relists`: successful lists after the first one (after a 410, or a restart that had no
 *   resourceVersion to resume from).
 * - `lastSyncTime`: epoch seconds of the last successful list or valid watch event (bookmarks
 *   included); 0 until the first one.
 * - `requests`: list and watch requests actually sent.
 * - `malformed`: list items and watch events dropped because they could not be an object of
 *   this kind (no metadata.name, unknown event type, …). Unparsable watch lines are dropped by
 *   client-node before we see them and are not counted.
 * - `synced`: the first full list has been applied.
 */
export interface InformerStats {
  readonly watchRestarts: Record<WatchRestartReason, number>;
  relists: number;
  lastSyncTime: number;
  readonly requests: { list: number; watch: number };
  malformed: number;
  synced: boolean;
}

/** Counters of the Node read that gives this node's zone (same conventions). */
export interface NodeStats {
  requests: number;
  errors: number;
  lastSyncTime: number;
  zone: string | undefined;
}

/** Everything the Kubernetes source counts, per informer plus the Node read. */
export interface K8sSourceStats {
  readonly services: InformerStats;
  readonly endpointslices: InformerStats;
  readonly node: NodeStats;
}

/** Zeroed informer stats. */
export function newInformerStats(): InformerStats {
  const watchRestarts = Object.fromEntries(WATCH_RESTART_REASONS.map((r) => [r, 0])) as Record<
    WatchRestartReason,
    number
  >;
  return {
    watchRestarts,
    relists: 0,
    lastSyncTime: 0,
    requests: { list: 0, watch: 0 },
    malformed: 0,
    synced: false,
  };
}

/** Zeroed source stats. */
export function newK8sSourceStats(): K8sSourceStats {
  return {
    services: newInformerStats(),
    endpointslices: newInformerStats(),
    node: { requests: 0, errors: 0, lastSyncTime: 0, zone: undefined },
  };
}

const NETWORK_CODE = /^(E[A-Z]+|UND_ERR_[A-Z_]+|ERR_TLS_[A-Z_]+|(UNABLE|DEPTH|CERT|SELF)_[A-Z_]+)$/;

function httpStatus(err: { statusCode?: unknown; code?: unknown }): number | undefined {
  if (typeof err.statusCode === 'number') return err.statusCode;
  if (typeof err.code === 'number') return err.code;
  return undefined;
}

/**
 * Classifies what client-node reports, as measured against 2.0.1: `ApiException` (list, `code`
 * = HTTP status), `Error` with `statusCode` (watch), `TypeError('fetch failed')` with a `cause`
 * carrying the errno (connect), `TypeError('terminated')` (stream cut), DOMException
 * `TimeoutError` (idle watch or our list timeout). Pure; never throws.
 */
export function classifyError(err: unknown): WatchRestartReason {
  if (typeof err !== 'object' || err === null) return 'other';
  const e = err as {
    name?: unknown;
    message?: unknown;
    statusCode?: unknown;
    code?: unknown;
    cause?: unknown;
  };
  if (e.name === 'TimeoutError') return 'timeout';
  const status = httpStatus(e);
  if (status === 410) return 'expired';
  if (status !== undefined) return 'http-error';
  if (typeof e.code === 'string' && NETWORK_CODE.test(e.code)) return 'network-error';
  if (err instanceof TypeError && (e.message === 'fetch failed' || e.message === 'terminated')) {
    return 'network-error';
  }
  if (e.cause !== undefined && e.cause !== err) {
    const inner = classifyError(e.cause);
    if (inner !== 'other') return inner;
  }
  return 'other';
}
