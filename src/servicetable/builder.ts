import { categorizeEndpoints, type NodeContext } from './categorize.js';
import {
  endpointKey,
  servicePortKey,
  type Endpoint,
  type EndpointState,
  type ObjectProblem,
  type ObjectSkip,
  type ServicePort,
  type ServiceTable,
} from './types.js';
import {
  validateEndpointSlice,
  validateService,
  type EndpointSliceSpec,
  type ServiceSpec,
  type SliceEndpointSpec,
  type Validated,
} from './validate.js';

/** What one upsert did: `applied` false means the object was rejected whole (see problems). */
export interface UpdateResult {
  readonly applied: boolean;
  /** True when the normalised object differs from what was stored before. */
  readonly changed: boolean;
  readonly problems: readonly ObjectProblem[];
  readonly skip: ObjectSkip | undefined;
  readonly notes: readonly ObjectSkip[];
}

const EMPTY_TABLE: ServiceTable = { version: 0, ports: new Map() };

function nsName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * Builds ServiceTables incrementally from Service and EndpointSlice objects, with kube-proxy's
 * semantics (`endpointslicecache.go`, `servicechangetracker.go`, `topology.go`):
 * slices join a Service through the `kubernetes.io/service-name` label and its ports through
 * port name + protocol; an endpoint in two slices counts once and a non-terminating copy wins;
 * endpoints come from slices of the Service's primary IP family only.
 *
 * Not thread-safe and not re-entrant; owned by one caller. `build()` recomputes only the
 * Services touched since the last build and returns a table that shares unchanged ServicePort
 * objects with the previous one.
 */
export class ServiceTableBuilder {
  #services = new Map<string, ServiceSpec>();
  /** Service ns/name → slice name → slice. */
  #slicesByService = new Map<string, Map<string, EndpointSliceSpec>>();
  /** Slice ns/name → slice, to find the Service a changed slice used to belong to. */
  #slices = new Map<string, EndpointSliceSpec>();
  #dirty = new Set<string>();
  /** Service ns/name → the keys of its ports in the last built table. */
  #portKeys = new Map<string, readonly string[]>();
  #node: { nodeName: string | undefined; zone: string | undefined };
  #table: ServiceTable = EMPTY_TABLE;

  constructor(node: Partial<NodeContext> = {}) {
    this.#node = { nodeName: node.nodeName, zone: node.zone };
  }

  /** The last built table. */
  get table(): ServiceTable {
    return this.#table;
  }

  /** True when a change is waiting for `build()`. */
  get dirty(): boolean {
    return this.#dirty.size > 0;
  }

  /** Sets this node's zone (for topology hints); marks every Service for rebuild if it changed. */
  setNodeZone(zone: string | undefined): void {
    if (zone === this.#node.zone) return;
    this.#node.zone = zone;
    for (const key of this.#services.keys()) this.#dirty.add(key);
  }

  /** Validates and stores a Service. A rejected object leaves the stored one in place. */
  upsertService(raw: unknown): UpdateResult {
    return this.#upsert(
      validateService(raw),
      (spec) => {
        const key = nsName(spec.namespace, spec.name);
        if (sameJSON(this.#services.get(key), spec)) return false;
        this.#services.set(key, spec);
        this.#dirty.add(key);
        return true;
      },
      (skipped) => this.deleteService(skipped.namespace, skipped.name),
    );
  }

  deleteService(namespace: string, name: string): boolean {
    const key = nsName(namespace, name);
    if (!this.#services.delete(key)) return false;
    this.#dirty.add(key);
    return true;
  }

  /** Validates and stores an EndpointSlice. A rejected object leaves the stored one in place. */
  upsertEndpointSlice(raw: unknown): UpdateResult {
    return this.#upsert(
      validateEndpointSlice(raw),
      (spec) => {
        const key = nsName(spec.namespace, spec.name);
        const old = this.#slices.get(key);
        if (sameJSON(old, spec)) return false;
        if (old !== undefined) this.#unlinkSlice(old);
        this.#slices.set(key, spec);
        const svcKey = nsName(spec.namespace, spec.serviceName);
        let byName = this.#slicesByService.get(svcKey);
        if (byName === undefined) this.#slicesByService.set(svcKey, (byName = new Map()));
        byName.set(spec.name, spec);
        this.#dirty.add(svcKey);
        return true;
      },
      (skipped) => this.deleteEndpointSlice(skipped.namespace, skipped.name),
    );
  }

  deleteEndpointSlice(namespace: string, name: string): boolean {
    const key = nsName(namespace, name);
    const old = this.#slices.get(key);
    if (old === undefined) return false;
    this.#slices.delete(key);
    this.#unlinkSlice(old);
    return true;
  }

  /**
   * Recomputes the Services changed since the last build. Returns the same table object when
   * nothing changed, else a new table with `version` + 1.
   */
  build(): ServiceTable {
    if (this.#dirty.size === 0) return this.#table;
    const prev = this.#table.ports;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    // Recompute the ports of the dirty Services only, found through #portKeys: the work is in
    // the Services that changed, not in the size of the table (issue 13). Unchanged ports keep
    // their old object so consumers can compare with ===.
    const updates: { svc: string; drop: readonly string[]; ports: ServicePort[] }[] = [];
    for (const svc of dirty) {
      const drop = this.#portKeys.get(svc) ?? [];
      const ports = this.#servicePorts(svc);
      let same = ports.length === drop.length;
      for (const [i, sp] of ports.entries()) {
        const before = prev.get(sp.key);
        if (before !== undefined && sameServicePort(before, sp)) ports[i] = before;
        else same = false;
      }
      if (!same) updates.push({ svc, drop, ports });
    }
    if (updates.length === 0) return this.#table;
    // One copy of the map (native, fast) per build that changed something.
    const next = new Map(prev);
    for (const u of updates) for (const key of u.drop) next.delete(key);
    for (const u of updates) {
      for (const sp of u.ports) next.set(sp.key, sp);
      if (u.ports.length === 0) this.#portKeys.delete(u.svc);
      else
        this.#portKeys.set(
          u.svc,
          u.ports.map((sp) => sp.key),
        );
    }
    this.#table = { version: this.#table.version + 1, ports: next };
    return this.#table;
  }

  #upsert<T extends { namespace: string; name: string }>(
    v: Validated<T>,
    store: (spec: T) => boolean,
    removeSkipped: (id: { namespace: string; name: string }) => boolean,
  ): UpdateResult {
    if (v.value === undefined) {
      // A skipped object (headless, ExternalName, FQDN) is valid: it replaces an earlier version
      // that was proxied. A rejected one (problems) leaves the last good version in place.
      const changed = v.skip !== undefined && v.id !== undefined && removeSkipped(v.id);
      return {
        applied: v.skip !== undefined,
        changed,
        problems: v.problems,
        skip: v.skip,
        notes: v.notes,
      };
    }
    const changed = store(v.value);
    return { applied: true, changed, problems: v.problems, skip: undefined, notes: v.notes };
  }

  #unlinkSlice(slice: EndpointSliceSpec): void {
    const svcKey = nsName(slice.namespace, slice.serviceName);
    const byName = this.#slicesByService.get(svcKey);
    if (byName !== undefined) {
      byName.delete(slice.name);
      if (byName.size === 0) this.#slicesByService.delete(svcKey);
    }
    this.#dirty.add(svcKey);
  }

  #servicePorts(svcKey: string): ServicePort[] {
    const svc = this.#services.get(svcKey);
    if (svc === undefined || svc.clusterIP === undefined) return [];
    const slices = [...(this.#slicesByService.get(svcKey)?.values() ?? [])]
      .filter((s) => s.addressType === svc.family)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return svc.ports.map((port) => {
      const name = {
        namespace: svc.namespace,
        name: svc.name,
        port: port.name,
        protocol: port.protocol,
      };
      const merged = mergeEndpoints(slices, port.name, port.protocol);
      const eligible = categorizeEndpoints(merged, svc.internalTrafficPolicy, this.#node);
      const endpoints: Endpoint[] = merged.map((ep, i) => ({
        ...ep,
        eligible: eligible[i] === true,
      }));
      return {
        name,
        key: servicePortKey(name),
        clusterIP: svc.clusterIP as string,
        family: svc.family,
        port: port.port,
        internalTrafficPolicy: svc.internalTrafficPolicy,
        endpoints,
      };
    });
  }
}

function endpointState(ep: SliceEndpointSpec): EndpointState {
  return ep.ready ? 'ready' : ep.terminating ? 'terminating' : 'not-ready';
}

/**
 * The endpoints of one Service port from all its slices (sorted by slice name), de-duplicated
 * by `ip:port`: a later copy replaces an earlier one only when it is not terminating.
 */
function mergeEndpoints(
  slices: readonly EndpointSliceSpec[],
  portName: string,
  protocol: string,
): Omit<Endpoint, 'eligible'>[] {
  const byKey = new Map<string, Omit<Endpoint, 'eligible'>>();
  for (const slice of slices) {
    for (const p of slice.ports) {
      if (p.name !== portName || p.protocol !== protocol) continue;
      for (const ep of slice.endpoints) {
        const key = endpointKey(ep.address, p.port);
        if (byKey.has(key) && ep.terminating) continue;
        byKey.set(key, {
          key,
          address: ep.address,
          port: p.port,
          ready: ep.ready,
          serving: ep.serving,
          terminating: ep.terminating,
          state: endpointState(ep),
          nodeName: ep.nodeName,
          zone: ep.zone,
          forZones: ep.forZones,
          forNodes: ep.forNodes,
          targetRef: ep.targetRef,
        });
      }
    }
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function sameJSON(a: unknown, b: unknown): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Field by field rather than through JSON.stringify: a Service port with 10,000 endpoints took
 * milliseconds per comparison that way (issue 13). The field lists are typed as complete, so a
 * field added to ServicePort or Endpoint fails to compile until it is listed here.
 */
const PORT_FIELDS: Record<Exclude<keyof ServicePort, 'name' | 'endpoints'>, true> = {
  key: true,
  clusterIP: true,
  family: true,
  port: true,
  internalTrafficPolicy: true,
};
const NAME_FIELDS: Record<keyof ServicePort['name'], true> = {
  namespace: true,
  name: true,
  port: true,
  protocol: true,
};
const ENDPOINT_FIELDS: Record<keyof Endpoint, 'value' | 'list'> = {
  key: 'value',
  address: 'value',
  port: 'value',
  ready: 'value',
  serving: 'value',
  terminating: 'value',
  state: 'value',
  nodeName: 'value',
  zone: 'value',
  forZones: 'list',
  forNodes: 'list',
  targetRef: 'value',
  eligible: 'value',
};
const PORT_KEYS = Object.keys(PORT_FIELDS) as (keyof typeof PORT_FIELDS)[];
const NAME_KEYS = Object.keys(NAME_FIELDS) as (keyof typeof NAME_FIELDS)[];
const ENDPOINT_KEYS = Object.entries(ENDPOINT_FIELDS) as [keyof Endpoint, 'value' | 'list'][];

function sameServicePort(a: ServicePort, b: ServicePort): boolean {
  if (a.endpoints.length !== b.endpoints.length) return false;
  if (PORT_KEYS.some((k) => a[k] !== b[k]) || NAME_KEYS.some((k) => a.name[k] !== b.name[k]))
    return false;
  for (let i = 0; i < a.endpoints.length; i++) {
    if (!sameEndpoint(a.endpoints[i] as Endpoint, b.endpoints[i] as Endpoint)) return false;
  }
  return true;
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  for (const [k, kind] of ENDPOINT_KEYS) {
    if (kind === 'list') {
      if (!sameList(a[k] as readonly string[], b[k] as readonly string[])) return false;
    } else if (a[k] !== b[k]) return false;
  }
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
