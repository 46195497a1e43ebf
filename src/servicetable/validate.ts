import { isIPv4, isIPv6 } from 'node:net';
import type {
  IPFamily,
  InternalTrafficPolicy,
  ObjectProblem,
  ObjectSkip,
  Protocol,
} from './types.js';

/**
 * Validation and normalisation of Service and EndpointSlice objects as decoded from JSON or
 * YAML, in either shape client-node produces. Only the fields kube-proxy reads are looked at.
 *
 * The rule is "skip the smallest bad unit": a bad port or endpoint is dropped with a problem,
 * the rest of the object is kept; an object without a usable identity is dropped whole.
 */

/** A Service reduced to what the proxy uses. */
export interface ServiceSpec {
  readonly namespace: string;
  readonly name: string;
  /** Primary ClusterIP (`spec.clusterIP`, else `spec.clusterIPs[0]`); undefined when skipped. */
  readonly clusterIP: string | undefined;
  readonly family: IPFamily;
  readonly internalTrafficPolicy: InternalTrafficPolicy;
  readonly ports: readonly PortSpec[];
}

export interface PortSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** An EndpointSlice reduced to what the proxy uses. */
export interface EndpointSliceSpec {
  readonly namespace: string;
  readonly name: string;
  /** The `kubernetes.io/service-name` label: which Service this slice belongs to. */
  readonly serviceName: string;
  readonly addressType: IPFamily;
  readonly ports: readonly PortSpec[];
  readonly endpoints: readonly SliceEndpointSpec[];
}

export interface SliceEndpointSpec {
  /** `addresses[0]`, normalised. */
  readonly address: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
  readonly forZones: readonly string[];
  readonly forNodes: readonly string[];
  readonly targetRef: string | undefined;
}

/** The result of validating one object. `value` is undefined when the object is unusable. */
export interface Validated<T> {
  readonly value: T | undefined;
  /** The object's namespace and name, when it has a usable one. */
  readonly id: ObjectId | undefined;
  /** Set when the object is valid but contributes nothing (headless, ExternalName, FQDN...). */
  readonly skip: ObjectSkip | undefined;
  /** Parts that were dropped, or why the whole object was. */
  readonly problems: readonly ObjectProblem[];
  /** Things that are valid but ignored (non-TCP ports, ports without a name in a slice). */
  readonly notes: readonly ObjectSkip[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Which object we are looking at, for messages. Never throws. */
export function describeObject(kind: string, raw: unknown): string {
  if (!isObj(raw) || !isObj(raw.metadata)) return kind;
  const { namespace, name } = raw.metadata;
  if (typeof name !== 'string' || name === '') return kind;
  return `${kind} ${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

export interface ObjectId {
  readonly namespace: string;
  readonly name: string;
}

class Collector<T> {
  readonly problems: ObjectProblem[] = [];
  readonly notes: ObjectSkip[] = [];
  id: ObjectId | undefined;
  constructor(readonly object: string) {}
  problem(field: string, message: string): void {
    this.problems.push({ object: this.object, field, message });
  }
  note(reason: string): void {
    this.notes.push({ object: this.object, reason });
  }
  result(value: T | undefined, skip?: string): Validated<T> {
    return {
      value,
      id: this.id,
      skip: skip === undefined ? undefined : { object: this.object, reason: skip },
      problems: this.problems,
      notes: this.notes,
    };
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** metadata.namespace (default `default`, as kubectl applies it) and metadata.name. */
function identity(raw: unknown, c: Collector<unknown>): ObjectId | undefined {
  if (!isObj(raw)) {
    c.problem('', `must be an object, got ${show(raw)}`);
    return undefined;
  }
  const meta = raw.metadata;
  if (!isObj(meta)) {
    c.problem('metadata', 'is missing');
    return undefined;
  }
  if (typeof meta.name !== 'string' || meta.name === '') {
    c.problem('metadata.name', `must be a non-empty string, got ${show(meta.name)}`);
    return undefined;
  }
  const ns = meta.namespace ?? 'default';
  if (typeof ns !== 'string' || ns === '') {
    c.problem('metadata.namespace', `must be a non-empty string, got ${show(ns)}`);
    return undefined;
  }
  c.id = { namespace: ns, name: meta.name };
  return c.id;
}

function portNumber(v: unknown, field: string, c: Collector<unknown>): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    c.problem(field, `must be an integer from 1 to 65535, got ${show(v)}`);
    return undefined;
  }
  return v;
}

function protocol(v: unknown, field: string, c: Collector<unknown>): Protocol | undefined {
  if (v === undefined || v === null) return 'TCP';
  if (typeof v !== 'string' || !PROTOCOLS.has(v)) {
    c.problem(field, `must be TCP, UDP or SCTP, got ${show(v)}`);
    return undefined;
  }
  return v as Protocol;
}

/** The family of an IP literal, or undefined when it is not one. */
export function ipFamily(ip: string): IPFamily | undefined {
  return isIPv4(ip) ? 'IPv4' : isIPv6(ip) ? 'IPv6' : undefined;
}

/**
 * Normalises an IP literal so that two spellings of one address give one key: IPv6 is
 * lower-cased and compressed (by the WHATWG URL serializer), IPv4 is kept as is.
 */
export function normalizeIP(ip: string): string {
  if (!isIPv6(ip)) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Validates a `v1 Service`. */
export function validateService(raw: unknown): Validated<ServiceSpec> {
  const c = new Collector<ServiceSpec>(describeObject('Service', raw));
  const id = identity(raw, c);
  if (id === undefined) return c.result(undefined);
  const spec = (raw as Obj).spec;
  if (!isObj(spec)) {
    c.problem('spec', 'is missing');
    return c.result(undefined);
  }
  if (spec.type === 'ExternalName') return c.result(undefined, 'ExternalName Service');

  let clusterIP: unknown = spec.clusterIP;
  let field = 'spec.clusterIP';
  if ((clusterIP === undefined || clusterIP === '') && Array.isArray(spec.clusterIPs)) {
    clusterIP = spec.clusterIPs[0];
    field = 'spec.clusterIPs[0]';
  }
  if (clusterIP === undefined || clusterIP === null || clusterIP === '' || clusterIP === 'None') {
    return c.result(undefined, 'headless Service (no clusterIP)');
  }
  const family = typeof clusterIP === 'string' ? ipFamily(clusterIP) : undefined;
  if (family === undefined) {
    c.problem(field, `must be an IP address or "None", got ${show(clusterIP)}`);
    return c.result(undefined);
  }

  let itp: InternalTrafficPolicy = 'Cluster';
  if (spec.internalTrafficPolicy === 'Local') itp = 'Local';
  else if (spec.internalTrafficPolicy !== undefined && spec.internalTrafficPolicy !== null) {
    if (spec.internalTrafficPolicy !== 'Cluster') {
      c.problem(
        'spec.internalTrafficPolicy',
        `must be Cluster or Local, got ${show(spec.internalTrafficPolicy)}; using Cluster`,
      );
    }
  }

  const ports: PortSpec[] = [];
  if (!Array.isArray(spec.ports)) {
    c.problem('spec.ports', `must be a list, got ${show(spec.ports)}`);
  } else {
    const seen = new Set<string>();
    spec.ports.forEach((p: unknown, i) => {
      const f = `spec.ports[${i}]`;
      if (!isObj(p)) return c.problem(f, `must be an object, got ${show(p)}`);
      const name = p.name ?? '';
      if (typeof name !== 'string')
        return c.problem(`${f}.name`, `must be a string, got ${show(name)}`);
      const proto = protocol(p.protocol, `${f}.protocol`, c);
      const port = portNumber(p.port, `${f}.port`, c);
      if (proto === undefined || port === undefined) return;
      if (proto !== 'TCP')
        return c.note(`${f}: ${proto} port ${port} skipped (only TCP is proxied)`);
      const key = `${name}/${proto}`;
      if (seen.has(key)) return c.problem(`${f}.name`, `duplicate port name ${show(name)}`);
      seen.add(key);
      ports.push({ name, port, protocol: proto });
    });
  }
  return c.result({
    namespace: id.namespace,
    name: id.name,
    clusterIP: normalizeIP(clusterIP as string),
    family,
    internalTrafficPolicy: itp,
    ports,
  });
}

function condition(v: unknown, dflt: boolean, field: string, c: Collector<unknown>): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') {
    c.problem(field, `must be true or false, got ${show(v)}; using ${dflt}`);
    return dflt;
  }
  return v;
}

function optionalString(v: unknown, field: string, c: Collector<unknown>): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    c.problem(field, `must be a string, got ${show(v)}`);
    return undefined;
  }
  return v;
}

/** One frozen empty list shared by every endpoint without hints (most of them). */
const NO_HINTS: readonly string[] = Object.freeze([]);

function hintNames(v: unknown, field: string, c: Collector<unknown>): readonly string[] {
  if (v === undefined || v === null) return NO_HINTS;
  if (!Array.isArray(v)) {
    c.problem(field, `must be a list, got ${show(v)}`);
    return NO_HINTS;
  }
  if (v.length === 0) return NO_HINTS;
  const names: string[] = [];
  v.forEach((h: unknown, i) => {
    if (isObj(h) && typeof h.name === 'string') names.push(h.name);
    else c.problem(`${field}[${i}].name`, `must be a string, got ${show(isObj(h) ? h.name : h)}`);
  });
  return names;
}

function endpointSpec(
  e: unknown,
  f: string,
  family: IPFamily,
  c: Collector<unknown>,
): SliceEndpointSpec | undefined {
  if (!isObj(e)) {
    c.problem(f, `must be an object, got ${show(e)}`);
    return undefined;
  }
  if (!Array.isArray(e.addresses) || e.addresses.length === 0) {
    // kube-proxy skips endpoints without addresses; the API server never sends them.
    c.problem(`${f}.addresses`, `must be a non-empty list, got ${show(e.addresses)}`);
    return undefined;
  }
  const addr: unknown = e.addresses[0];
  if (typeof addr !== 'string' || ipFamily(addr) !== family) {
    c.problem(`${f}.addresses[0]`, `must be an ${family} address, got ${show(addr)}`);
    return undefined;
  }
  const cond = isObj(e.conditions) ? e.conditions : {};
  const hints = isObj(e.hints) ? e.hints : {};
  const ref = isObj(e.targetRef) ? e.targetRef : undefined;
  const refName = ref !== undefined && typeof ref.name === 'string' ? ref.name : undefined;
  const refNs = ref !== undefined && typeof ref.namespace === 'string' ? `${ref.namespace}/` : '';
  return {
    address: normalizeIP(addr),
    ready: condition(cond.ready, true, `${f}.conditions.ready`, c),
    serving: condition(cond.serving, true, `${f}.conditions.serving`, c),
    terminating: condition(cond.terminating, false, `${f}.conditions.terminating`, c),
    nodeName: optionalString(e.nodeName, `${f}.nodeName`, c),
    zone: optionalString(e.zone, `${f}.zone`, c),
    forZones: hintNames(hints.forZones, `${f}.hints.forZones`, c),
    forNodes: hintNames(hints.forNodes, `${f}.hints.forNodes`, c),
    targetRef: refName === undefined ? undefined : `${refNs}${refName}`,
  };
}

/** Validates a `discovery.k8s.io/v1 EndpointSlice`. */
export function validateEndpointSlice(raw: unknown): Validated<EndpointSliceSpec> {
  const c = new Collector<EndpointSliceSpec>(describeObject('EndpointSlice', raw));
  const id = identity(raw, c);
  if (id === undefined) return c.result(undefined);
  const obj = raw as Obj;
  const labels = isObj((obj.metadata as Obj).labels) ? ((obj.metadata as Obj).labels as Obj) : {};
  const serviceName = labels[SERVICE_NAME_LABEL];
  if (typeof serviceName !== 'string' || serviceName === '') {
    c.problem(`metadata.labels["${SERVICE_NAME_LABEL}"]`, `is required, got ${show(serviceName)}`);
    return c.result(undefined);
  }
  if (obj.addressType === 'FQDN') return c.result(undefined, 'FQDN EndpointSlice');
  if (obj.addressType !== 'IPv4' && obj.addressType !== 'IPv6') {
    c.problem('addressType', `must be IPv4, IPv6 or FQDN, got ${show(obj.addressType)}`);
    return c.result(undefined);
  }
  const family: IPFamily = obj.addressType;

  const ports: PortSpec[] = [];
  if (obj.ports !== undefined && obj.ports !== null && !Array.isArray(obj.ports)) {
    c.problem('ports', `must be a list, got ${show(obj.ports)}`);
  } else {
    ((obj.ports as unknown[] | undefined) ?? []).forEach((p: unknown, i) => {
      const f = `ports[${i}]`;
      if (!isObj(p)) return c.problem(f, `must be an object, got ${show(p)}`);
      // kube-proxy ignores ports with a nil name or a nil/0 port ("all ports").
      if (p.name === undefined || p.name === null) return c.note(`${f}: no name, ignored`);
      if (p.port === undefined || p.port === null || p.port === 0) {
        return c.note(`${f}: no port number, ignored`);
      }
      if (typeof p.name !== 'string')
        return c.problem(`${f}.name`, `must be a string, got ${show(p.name)}`);
      const proto = protocol(p.protocol, `${f}.protocol`, c);
      const port = portNumber(p.port, `${f}.port`, c);
      if (proto === undefined || port === undefined) return;
      ports.push({ name: p.name, port, protocol: proto });
    });
  }

  const endpoints: SliceEndpointSpec[] = [];
  if (obj.endpoints !== undefined && obj.endpoints !== null && !Array.isArray(obj.endpoints)) {
    c.problem('endpoints', `must be a list, got ${show(obj.endpoints)}`);
  } else {
    ((obj.endpoints as unknown[] | undefined) ?? []).forEach((e, i) => {
      const ep = endpointSpec(e, `endpoints[${i}]`, family, c);
      if (ep !== undefined) endpoints.push(ep);
    });
  }
  return c.result({
    namespace: id.namespace,
    name: id.name,
    serviceName,
    addressType: family,
    ports,
    endpoints,
  });
}
