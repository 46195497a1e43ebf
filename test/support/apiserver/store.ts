import { randomUUID } from 'node:crypto';

/** The resources the stand-in serves. Nodes are readable by name only (no list, no watch). */
export type Resource = 'services' | 'endpointslices' | 'nodes';

/** Wire facts per resource: the `kind`/`apiVersion` written on watch objects and list replies. */
export const RESOURCES: Readonly<
  Record<Resource, { kind: string; apiVersion: string; namespaced: boolean }>
> = {
  services: { kind: 'Service', apiVersion: 'v1', namespaced: true },
  endpointslices: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', namespaced: true },
  nodes: { kind: 'Node', apiVersion: 'v1', namespaced: false },
};

/** A stored object: plain JSON, `metadata` always present, never `kind`/`apiVersion`. */
export interface StoredObject {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion: string;
    uid: string;
    creationTimestamp: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** One change, as the watch cache keeps it: the previous state lets selector watches turn a
 *  change into ADDED or DELETED when an object starts or stops matching. */
export interface StoreEvent {
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: StoredObject;
  readonly prev: StoredObject | undefined;
  readonly rv: number;
}

type Listener = (ev: StoreEvent) => void;

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * In-memory state with ONE global resourceVersion counter shared by every resource (like
 * etcd's revision). Every upsert and delete bumps it and appends to the resource's event log;
 * `compact` forgets history up to the current RV. Listeners are called synchronously, in RV
 * order, so a watch that replays the log and then subscribes in the same tick misses nothing.
 */
export class ObjectStore {
  #rv = 1;
  readonly #objects = new Map<Resource, Map<string, StoredObject>>();
  readonly #log = new Map<Resource, StoreEvent[]>();
  readonly #compacted = new Map<Resource, number>();
  readonly #listeners = new Set<Listener>();

  constructor() {
    for (const r of Object.keys(RESOURCES) as Resource[]) {
      this.#objects.set(r, new Map());
      this.#log.set(r, []);
      this.#compacted.set(r, 0);
    }
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Watches from an RV below this answer 410 Expired. */
  compactedRV(resource: Resource): number {
    return this.#compacted.get(resource) ?? 0;
  }

  /**
   * Creates or replaces an object (keyed by metadata.namespace/name). Sets resourceVersion,
   * keeps uid and creationTimestamp across updates. Returns the stored copy.
   */
  upsert(resource: Resource, input: object): StoredObject {
    const obj = structuredClone(input) as Partial<StoredObject> & Record<string, unknown>;
    delete obj['kind'];
    delete obj['apiVersion'];
    const meta = { ...(obj.metadata ?? {}) } as StoredObject['metadata'];
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw new Error(`${resource}: metadata.name is required`);
    }
    if (RESOURCES[resource].namespaced) meta.namespace = meta.namespace || 'default';
    else delete meta.namespace;
    const map = this.#objects.get(resource)!;
    const key = keyOf(meta.namespace, meta.name);
    const prev = map.get(key);
    const rv = ++this.#rv;
    meta.resourceVersion = String(rv);
    meta.uid = prev?.metadata.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = prev?.metadata.creationTimestamp ?? rfc3339(Date.now());
    const stored = { ...obj, metadata: meta } as StoredObject;
    map.set(key, stored);
    this.#emit({ resource, type: prev ? 'MODIFIED' : 'ADDED', object: stored, prev, rv });
    return structuredClone(stored);
  }

  /** Deletes an object; the DELETED event carries its last state with the new RV. */
  delete(resource: Resource, namespace: string | undefined, name: string): boolean {
    const ns = RESOURCES[resource].namespaced ? namespace || 'default' : undefined;
    const map = this.#objects.get(resource)!;
    const prev = map.get(keyOf(ns, name));
    if (!prev) return false;
    map.delete(keyOf(ns, name));
    const rv = ++this.#rv;
    const object = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } };
    this.#emit({ resource, type: 'DELETED', object, prev, rv });
    return true;
  }

  /** A deep copy of one object, or undefined. */
  get(resource: Resource, namespace: string | undefined, name: string): StoredObject | undefined {
    const ns = RESOURCES[resource].namespaced ? namespace || 'default' : undefined;
    const o = this.#objects.get(resource)!.get(keyOf(ns, name));
    return o ? structuredClone(o) : undefined;
  }

  /** Every object of a resource, sorted by namespace/name (shared references: do not mutate). */
  list(resource: Resource): StoredObject[] {
    const map = this.#objects.get(resource)!;
    return [...map.keys()].sort().map((k) => map.get(k)!);
  }

  /** Log entries with rv > from, in order (shared references: do not mutate). */
  eventsSince(resource: Resource, from: number): StoreEvent[] {
    return this.#log.get(resource)!.filter((e) => e.rv > from);
  }

  /** Forgets history: watches from an RV below the current one will get 410 Expired. */
  compact(resource: Resource): void {
    this.#compacted.set(resource, this.#rv);
    this.#log.set(resource, []);
  }

  /** Subscribes to every change; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(ev: StoreEvent): void {
    this.#log.get(ev.resource)!.push(ev);
    for (const l of [...this.#listeners]) l(ev);
  }
}
