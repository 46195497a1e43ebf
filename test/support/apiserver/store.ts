import { randomUUID } from 'node:crypto';
import { alreadyExists, conflict, invalid, notFound } from './api-error.js';
import { KINDS, kindOf, type KindSpec, type Resource } from './kinds/index.js';

export { RESOURCES } from './kinds/index.js';
export type { Resource } from './kinds/index.js';

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

/** Preconditions of a delete (metav1.Preconditions). */
export interface Preconditions {
  readonly resourceVersion?: string | undefined;
  readonly uid?: string | undefined;
}

type Listener = (ev: StoreEvent) => void;

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The object without the fields the server owns, for "did anything change?" */
function content(o: StoredObject): string {
  const { resourceVersion: _rv, ...meta } = o.metadata;
  return JSON.stringify({ ...o, metadata: meta });
}

/**
 * In-memory state with ONE global resourceVersion counter shared by every resource (like
 * etcd's revision). Every write bumps it and appends to the resource's event log; `compact`
 * forgets history up to the current RV. Listeners are called synchronously, in RV order, so a
 * watch that replays the log and then subscribes in the same tick misses nothing.
 *
 * Two write paths: `upsert`/`delete` for tests (no checks, stored as given), and
 * `create`/`update`/`remove` for API requests, which apply the registry's rules (AlreadyExists,
 * optimistic concurrency on resourceVersion, create-on-update, defaults) and throw ApiError.
 */
export class ObjectStore {
  #rv = 1;
  readonly #objects = new Map<Resource, Map<string, StoredObject>>();
  readonly #log = new Map<Resource, StoreEvent[]>();
  readonly #compacted = new Map<Resource, number>();
  readonly #listeners = new Set<Listener>();

  constructor() {
    for (const k of KINDS) {
      const r = k.resource as Resource;
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
   * Creates or replaces an object (keyed by metadata.namespace/name) without any check. Sets
   * resourceVersion, keeps uid and creationTimestamp across updates. Returns the stored copy.
   */
  upsert(resource: Resource, input: object): StoredObject {
    const obj = this.#normalize(resource, input);
    return this.#write(resource, obj, this.#current(resource, obj));
  }

  /** API create: 409 AlreadyExists if present. Applies the kind's defaults. */
  create(resource: Resource, input: object): StoredObject {
    const spec = kindOf(resource);
    const obj = this.#normalize(resource, input);
    const prev = this.#current(resource, obj);
    if (prev) throw alreadyExists(spec, obj.metadata.name);
    delete (obj.metadata as Record<string, unknown>)['uid'];
    if (spec.statusSubresource) delete obj['status'];
    spec.defaults?.(obj);
    return this.#write(resource, obj, undefined);
  }

  /**
   * API update (PUT, and the end of every PATCH): a given metadata.resourceVersion must be
   * the stored one (else 409 Conflict); none at all is an unconditional update where the kind
   * allows it (else 422). A missing object is 404, or created when the kind allows it. An
   * update that changes nothing keeps the resourceVersion and sends no watch event, as the
   * real storage layer does.
   */
  update(resource: Resource, input: object): { object: StoredObject; created: boolean } {
    const spec = kindOf(resource);
    const obj = this.#normalize(resource, input);
    const name = obj.metadata.name;
    const prev = this.#current(resource, obj);
    const rv = obj.metadata.resourceVersion;
    if (!prev) {
      if (!spec.allowCreateOnUpdate) throw notFound(spec, name);
      if (rv !== undefined && rv !== '') throw notFound(spec, name);
      if (spec.statusSubresource) delete obj['status'];
      spec.defaults?.(obj);
      return { object: this.#write(resource, obj, undefined), created: true };
    }
    if (rv === undefined || rv === '') {
      if (!spec.allowUnconditionalUpdate) {
        const field = 'metadata.resourceVersion';
        throw invalid(
          spec,
          name,
          field,
          '0x0',
          'must be specified for an update',
          'FieldValueInvalid',
          spec.resource,
        );
      }
    } else if (rv !== prev.metadata.resourceVersion) {
      throw conflict(spec, name);
    }
    const uid = obj.metadata.uid;
    if (uid !== undefined && uid !== '' && uid !== prev.metadata.uid) {
      throw conflict(
        spec,
        name,
        `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${prev.metadata.uid}`,
      );
    }
    if (spec.statusSubresource) {
      if (prev['status'] === undefined) delete obj['status'];
      else obj['status'] = structuredClone(prev['status']);
    }
    spec.defaults?.(obj);
    obj.metadata.uid = prev.metadata.uid;
    obj.metadata.creationTimestamp = prev.metadata.creationTimestamp;
    obj.metadata.resourceVersion = prev.metadata.resourceVersion;
    if (content(obj) === content(prev)) return { object: structuredClone(prev), created: false };
    return { object: this.#write(resource, obj, prev), created: false };
  }

  /** API delete: 404 if absent, 409 if a precondition does not hold. Returns the last state. */
  remove(
    resource: Resource,
    namespace: string | undefined,
    name: string,
    pre: Preconditions = {},
  ): StoredObject {
    const spec = kindOf(resource);
    const prev = this.get(resource, namespace, name);
    if (!prev) throw notFound(spec, name);
    if (pre.uid !== undefined && pre.uid !== prev.metadata.uid) {
      throw conflict(
        spec,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${prev.metadata.uid}`,
      );
    }
    if (
      pre.resourceVersion !== undefined &&
      pre.resourceVersion !== prev.metadata.resourceVersion
    ) {
      throw conflict(
        spec,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${prev.metadata.resourceVersion}`,
      );
    }
    this.delete(resource, namespace, name);
    return prev;
  }

  /** Deletes an object; the DELETED event carries its last state with the new RV. */
  delete(resource: Resource, namespace: string | undefined, name: string): boolean {
    const ns = kindOf(resource).namespaced ? namespace || 'default' : undefined;
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
    const ns = kindOf(resource).namespaced ? namespace || 'default' : undefined;
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

  /** A deep copy without kind/apiVersion, with a name and the namespace the scope asks for. */
  #normalize(resource: Resource, input: object): StoredObject {
    const spec: KindSpec = kindOf(resource);
    const obj = structuredClone(input) as Partial<StoredObject> & Record<string, unknown>;
    delete obj['kind'];
    delete obj['apiVersion'];
    const meta = { ...(obj.metadata ?? {}) } as StoredObject['metadata'];
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw new Error(`${resource}: metadata.name is required`);
    }
    if (spec.namespaced) meta.namespace = meta.namespace || 'default';
    else delete meta.namespace;
    return { ...obj, metadata: meta } as StoredObject;
  }

  #current(resource: Resource, obj: StoredObject): StoredObject | undefined {
    return this.#objects.get(resource)!.get(keyOf(obj.metadata.namespace, obj.metadata.name));
  }

  #write(resource: Resource, obj: StoredObject, prev: StoredObject | undefined): StoredObject {
    const meta = obj.metadata;
    const rv = ++this.#rv;
    meta.resourceVersion = String(rv);
    meta.uid = prev?.metadata.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = prev?.metadata.creationTimestamp ?? rfc3339(Date.now());
    this.#objects.get(resource)!.set(keyOf(meta.namespace, meta.name), obj);
    this.#emit({ resource, type: prev ? 'MODIFIED' : 'ADDED', object: obj, prev, rv });
    return structuredClone(obj);
  }

  #emit(ev: StoreEvent): void {
    this.#log.get(ev.resource)!.push(ev);
    for (const l of [...this.#listeners]) l(ev);
  }
}
