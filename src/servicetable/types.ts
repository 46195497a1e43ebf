/**
 * The service table: what the proxy serves, built from Service and EndpointSlice objects with
 * kube-proxy's semantics. Every value here is immutable once built; a new table is a new
 * object that shares the unchanged ServicePort objects of the previous one (compare them with
 * `===` to find what changed).
 */

/** Only TCP is proxied; other protocols are skipped when the table is built. */
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export type IPFamily = 'IPv4' | 'IPv6';

/**
 * One port of one Service, as kube-proxy's `ServicePortName`. The string form (`key`) is
 * `namespace/name:port` for a named port and `namespace/name` for an unnamed one.
 */
export interface ServicePortName {
  readonly namespace: string;
  readonly name: string;
  /** The Service port's `name`; `''` when unnamed. */
  readonly port: string;
  readonly protocol: Protocol;
}

/**
 * How an endpoint may be used, from its EndpointSlice conditions (kube-proxy defaults: a missing
 * `ready` or `serving` is true, a missing `terminating` is false):
 * - `ready`: takes new connections;
 * - `terminating`: shutting down (`terminating: true`); takes new connections only as a fallback
 *   when it is still serving and no ready endpoint exists;
 * - `not-ready`: neither ready nor terminating; takes no new connections.
 */
export type EndpointState = 'ready' | 'terminating' | 'not-ready';

/** One backend of one Service port: `addresses[0]` of an EndpointSlice endpoint plus its port. */
export interface Endpoint {
  /** `ip:port`, or `[ip]:port` for IPv6: unique within a Service port. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly state: EndpointState;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
  /** `hints.forZones[].name`, empty when absent. */
  readonly forZones: readonly string[];
  /** `hints.forNodes[].name`, empty when absent. */
  readonly forNodes: readonly string[];
  /** `namespace/name` of the target Pod, for display; undefined when absent. */
  readonly targetRef: string | undefined;
  /**
   * Whether new connections may go to this endpoint now: kube-proxy's choice (ready endpoints
   * that fit the traffic policy and topology; if none, serving + terminating ones).
   */
  readonly eligible: boolean;
}

export type InternalTrafficPolicy = 'Cluster' | 'Local';

/** A proxied Service port with the endpoints that currently back it. */
export interface ServicePort {
  readonly name: ServicePortName;
  /** String form of `name`, used as map key, log field and metric label. */
  readonly key: string;
  readonly clusterIP: string;
  readonly family: IPFamily;
  readonly port: number;
  readonly internalTrafficPolicy: InternalTrafficPolicy;
  /** Every endpoint of this port, de-duplicated and sorted by key, eligible or not. */
  readonly endpoints: readonly Endpoint[];
}

/** An immutable snapshot: Service port key → ServicePort. */
export interface ServiceTable {
  /** Increases by one with each build that changed something. */
  readonly version: number;
  readonly ports: ReadonlyMap<string, ServicePort>;
}

/** A problem found in an object from outside: which object, which field, what is wrong. */
export interface ObjectProblem {
  /** `Kind namespace/name`, or `Kind` alone when the object has no usable name. */
  readonly object: string;
  /** Dotted path of the bad field, e.g. `spec.ports[1].port`. */
  readonly field: string;
  readonly message: string;
}

/** Why a valid object contributes nothing to the table (logged, not an error). */
export interface ObjectSkip {
  readonly object: string;
  readonly reason: string;
}

/** The string form of a ServicePortName, as kube-proxy prints it. */
export function servicePortKey(name: ServicePortName): string {
  return `${name.namespace}/${name.name}${name.port === '' ? '' : `:${name.port}`}`;
}

/** `ip:port`, bracketing IPv6 addresses. */
export function endpointKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
