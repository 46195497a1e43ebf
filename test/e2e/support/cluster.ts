/**
 * A one-node "cluster" for end-to-end tests: a node namespace (harness), a pod on its bridge
 * running the stand-in API server, a kubeconfig for it, the Node object, and the proxy run from
 * the real CLI in the node namespace. Plus the Service/EndpointSlice shapes the proxy selects
 * and readers for the nat table it writes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { DebugState } from '../../../src/metrics/state.js';
import { endpointSlice, service, type EndpointSpecInput } from '../../support/objects.js';
import type { Harness, Node, Pod } from '../harness/index.js';
import { startApiServer, type ApiServerProcess } from './apiserver.js';
import { startProxy, type ProxyProcess } from './proxy.js';
import { waitUntil } from './wait.js';

/** The label that hands a Service (and, copied by Kubernetes, its slices) to this proxy. */
export const PROXY_NAME_LABELS = { 'service.kubernetes.io/service-proxy-name': 'kube-lc-proxy' };

/** A ClusterIP Service with one TCP port and one EndpointSlice, as the proxy selects them. */
export interface ServiceSpec {
  readonly name: string;
  readonly clusterIP: string;
  readonly port: number;
  /** Service port name; default `tcp`. */
  readonly portName?: string;
  /** The endpoints' port. */
  readonly targetPort: number;
  readonly endpoints: readonly EndpointSpecInput[];
}

/** `default/<name>:<portName>`: the proxy's key for the Service port (iptables comment too). */
export function servicePortName(s: ServiceSpec): string {
  return `default/${s.name}:${s.portName ?? 'tcp'}`;
}

/** The Service object of `s`, labelled for this proxy. */
export function serviceObject(s: ServiceSpec): Record<string, unknown> {
  return service(s.name, {
    clusterIP: s.clusterIP,
    ports: [{ name: s.portName ?? 'tcp', port: s.port }],
    labels: PROXY_NAME_LABELS,
  });
}

/** The EndpointSlice of `s` (`<name>-1`), labelled as Kubernetes would. */
export function sliceObject(s: ServiceSpec): Record<string, unknown> {
  return endpointSlice(`${s.name}-1`, [...s.endpoints], {
    service: s.name,
    ports: [{ name: s.portName ?? 'tcp', port: s.targetPort }],
    labels: PROXY_NAME_LABELS,
  });
}

export interface Cluster {
  readonly h: Harness;
  readonly node: Node;
  /** The pod that runs the stand-in API server. */
  readonly apiPod: Pod;
  readonly api: ApiServerProcess;
  readonly kubeconfig: string;
  /** The Node object's name (`--node-name`). */
  readonly nodeName: string;
  /** Creates or replaces the Service of `s` and its slice. */
  applyService(s: ServiceSpec): Promise<void>;
  /** Replaces only the slice of `s`. */
  applySlice(s: ServiceSpec): Promise<void>;
  /** Starts the proxy in the node namespace with `args` added to the defaults. */
  startProxy(args?: readonly string[]): Promise<ProxyProcess>;
  /**
   * Applies `services`, starts the proxy with `args` and waits until it is ready with a rule
   * for each: the start of most scenarios.
   */
  serve(
    services: ServiceSpec | readonly ServiceSpec[],
    args?: readonly string[],
  ): Promise<{ proxy: ProxyProcess; state: DebugState; rules: Redirect[] }>;
}

/**
 * Builds a node, a pod `<tag>-api` on it running the stand-in API server on the pod's address,
 * a kubeconfig (removed when the test finishes) and the Node object. Call inside a test.
 */
export async function startCluster(h: Harness, tag: string): Promise<Cluster> {
  const node = await h.addNode();
  const apiPod = await node.addPod(`${tag}-api`);
  const api = await startApiServer(h, apiPod.ns, apiPod.ip);
  const dir = await mkdtemp(join(tmpdir(), 'klp-e2e-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
  const nodeName = node.ns;
  await api.upsert('nodes', { metadata: { name: nodeName, labels: {} } });
  const cluster: Cluster = {
    h,
    node,
    apiPod,
    api,
    kubeconfig,
    nodeName,
    applyService: async (s) => {
      await api.upsert('services', serviceObject(s));
      await api.upsert('endpointslices', sliceObject(s));
    },
    applySlice: async (s) => {
      await api.upsert('endpointslices', sliceObject(s));
    },
    startProxy: (args = []) =>
      startProxy(h, node.ns, { kubeconfig, nodeName, args: ['--shutdown-grace', '2s', ...args] }),
    serve: async (services, args = []) => {
      const list: readonly ServiceSpec[] = Array.isArray(services)
        ? services
        : [services as ServiceSpec];
      for (const s of list) await cluster.applyService(s);
      const proxy = await cluster.startProxy(args);
      return { proxy, ...(await waitForSync(cluster, proxy, list.map(servicePortName))) };
    },
  };
  return cluster;
}

// ---- the nat table ----

/** `iptables-save -t nat` inside `ns`. */
export async function natSave(h: Harness, ns: string): Promise<string> {
  return (await h.exec(ns, ['iptables-save', '-t', 'nat'])).stdout;
}

/** One REDIRECT rule of the KUBE-LC-SERVICES chain, as iptables-save prints it. */
export interface Redirect {
  readonly comment: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly toPort: number;
}

const REDIRECT_RE =
  /^-A KUBE-LC-SERVICES -d ([\d.]+)\/32 -p tcp -m comment --comment (?:"((?:[^"\\]|\\.)*)"|(\S+)) -m tcp --dport (\d+) -j REDIRECT --to-ports (\d+)$/;

/** Every rule of KUBE-LC-SERVICES; throws on a rule of another shape (none is expected). */
export function redirects(save: string): Redirect[] {
  return save
    .split('\n')
    .filter((l) => l.startsWith('-A KUBE-LC-SERVICES '))
    .map((l) => {
      const m = REDIRECT_RE.exec(l);
      if (!m) throw new Error(`unexpected rule in KUBE-LC-SERVICES: ${l}`);
      return {
        comment: m[2] ?? m[3]!,
        clusterIP: m[1]!,
        port: Number(m[4]),
        toPort: Number(m[5]),
      };
    });
}

/** Lines (chain declarations and rules) that appear more than once. */
export function duplicateLines(save: string): string[] {
  const seen = new Map<string, number>();
  for (const l of save.split('\n')) {
    if (!l.startsWith('-A ') && !l.startsWith(':')) continue;
    const key = l.replace(/\[\d+:\d+\]/g, '');
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([l]) => l);
}

/** Rules of `chain` that jump to KUBE-LC-SERVICES. */
export function jumpsTo(save: string, chain: string): string[] {
  return save
    .split('\n')
    .filter((l) => l.startsWith(`-A ${chain} `) && l.endsWith('-j KUBE-LC-SERVICES'));
}

/** The port a Service port's listener is bound to, from /debug/state (undefined if none). */
export function listenPort(state: DebugState, servicePort: string): number | undefined {
  const sp = state.servicePorts.find((p) => p.servicePort === servicePort);
  if (sp?.listen === null || sp?.listen === undefined) return undefined;
  return Number(sp.listen.slice(sp.listen.lastIndexOf(':') + 1));
}

/**
 * Waits until the proxy is ready, listens for exactly `servicePorts`, and the nat table
 * redirects each ClusterIP to its listener (one rule each, nothing else in the chain). Resolves
 * with the state and the rules then in force.
 */
export async function waitForSync(
  c: Cluster,
  proxy: ProxyProcess,
  servicePorts: readonly string[],
  timeoutMs = 15_000,
): Promise<{ state: DebugState; rules: Redirect[] }> {
  const want = [...servicePorts].sort();
  return waitUntil(
    `proxy ready with rules for ${want.join(', ')}`,
    async () => {
      if ((await proxy.readyz()) !== 200) return false;
      const state = await proxy.state();
      const ports = state.servicePorts.map((p) => p.servicePort).sort();
      if (JSON.stringify(ports) !== JSON.stringify(want)) return false;
      const rules = redirects(await natSave(c.h, c.node.ns));
      if (rules.length !== want.length) return false;
      for (const sp of state.servicePorts) {
        const port = listenPort(state, sp.servicePort);
        const rule = rules.find((r) => r.comment === sp.servicePort);
        if (port === undefined || rule?.toPort !== port) return false;
        if (rule.clusterIP !== sp.clusterIP || rule.port !== sp.port) return false;
      }
      return { state, rules };
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/** The endpoints of a Service port in /debug/state, keyed `ip:port`. */
export function endpointsOf(
  state: DebugState,
  servicePort: string,
): Map<string, DebugState['servicePorts'][number]['endpoints'][number]> {
  const sp = state.servicePorts.find((p) => p.servicePort === servicePort);
  return new Map((sp?.endpoints ?? []).map((e) => [e.endpoint, e]));
}

/**
 * Whether a TCP socket listens on `port` in `ns` (`ss`). Probing a listener port directly no
 * longer works: the firewall chain drops connections to it that were not redirected.
 */
export async function listens(h: Harness, ns: string, port: number): Promise<boolean> {
  const out = (await h.exec(ns, ['ss', '-Hltn', `sport = :${port}`])).stdout;
  return out.trim() !== '';
}
