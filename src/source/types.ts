import type { FileSourceStats } from './file.js';
import type { K8sSourceStats } from './k8s/stats.js';

/**
 * What a source of Services and EndpointSlices feeds. Objects are passed as decoded JSON/YAML
 * (`unknown`): the sink validates them, so a source never has to trust or reshape them beyond
 * decoding. Both shapes client-node produces (list items through its ObjectSerializer, with
 * `Date` timestamps and no `kind`; watch objects as raw JSON) are accepted.
 *
 * Calls are synchronous and cheap: the sink records the change and rebuilds the service table
 * at most once per `commit()`.
 */
export interface SourceSink {
  /** A Service was added or changed (keyed by metadata.namespace/metadata.name). */
  upsertService(obj: unknown): void;
  /** A Service is gone. Unknown keys are ignored. */
  deleteService(namespace: string, name: string): void;
  /** An EndpointSlice was added or changed (keyed by metadata.namespace/metadata.name). */
  upsertEndpointSlice(obj: unknown): void;
  /** An EndpointSlice is gone. Unknown keys are ignored. */
  deleteEndpointSlice(namespace: string, name: string): void;
  /** This node's zone (label `topology.kubernetes.io/zone` of its Node), for topology hints. */
  setNodeZone(zone: string | undefined): void;
  /**
   * End of a batch of changes. `synced` is true once every kind the source watches has been
   * fully listed at least once; the daemon reports ready only after a synced commit.
   */
  commit(synced: boolean): void;
}

/** A source of cluster objects: a watched manifests file or the Kubernetes API. */
export interface Source {
  /** A short name for logs and metric labels: `file` or `k8s`. */
  readonly kind: 'file' | 'k8s';
  /**
   * Starts delivering changes to `sink`. Resolves once the source is running; it does not wait
   * for the API server to answer (readiness comes from `commit(true)`). Rejects only for errors
   * that make starting pointless (for the file source: a bad file at start).
   */
  start(sink: SourceSink): Promise<void>;
  /** Stops watching. Idempotent. */
  stop(): Promise<void>;
  /**
   * The source's counters, for the metrics at scrape time (see SourceStats); undefined while it
   * has none (the k8s source before its client library is loaded). Optional: a source without
   * counters leaves it out.
   */
  statsView?(): SourceStats | undefined;
}

/**
 * A source's counters, tagged with its kind so that a reader needs no cast. A view of the live
 * fields, not a copy: only the source writes them, readers must not.
 */
export type SourceStats =
  | { readonly kind: 'file'; readonly file: Readonly<FileSourceStats> }
  | { readonly kind: 'k8s'; readonly k8s: K8sSourceStats };
