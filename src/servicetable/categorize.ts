import type { InternalTrafficPolicy } from './types.js';

/**
 * kube-proxy's endpoint choice (`pkg/proxy/topology.go` CategorizeEndpoints), for ClusterIP
 * traffic:
 * - `Cluster` policy: ready endpoints that fit the topology mode; if there are none, serving +
 *   terminating endpoints anywhere, without topology filtering.
 * - `Local` policy: this node's ready endpoints; else this node's serving + terminating ones;
 *   else none (no fallback to other nodes).
 * Topology mode, judged over ready endpoints: PreferSameNode when every ready endpoint has
 * `hints.forNodes` and one names this node; else PreferSameZone when every ready endpoint has
 * `hints.forZones` and one names this node's zone; else none.
 */

export interface Categorizable {
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string | undefined;
  readonly forZones: readonly string[];
  readonly forNodes: readonly string[];
}

export interface NodeContext {
  /** This node's name; undefined when unknown (then no endpoint is local). */
  readonly nodeName: string | undefined;
  /** This node's `topology.kubernetes.io/zone` label. */
  readonly zone: string | undefined;
}

export type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

/** Which topology mode the hints of the ready endpoints ask for, seen from this node. */
export function topologyModeFromHints(
  endpoints: readonly Categorizable[],
  node: NodeContext,
): TopologyMode {
  let hasForNode = false;
  let allHaveNodeHints = true;
  let hasForZone = false;
  let allHaveZoneHints = true;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.forNodes.length === 0) allHaveNodeHints = false;
    else if (node.nodeName !== undefined && ep.forNodes.includes(node.nodeName)) hasForNode = true;
    if (ep.forZones.length === 0) allHaveZoneHints = false;
    else if (node.zone !== undefined && ep.forZones.includes(node.zone)) hasForZone = true;
  }
  if (allHaveNodeHints && hasForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasForZone) return 'PreferSameZone';
  return '';
}

function fitsTopology(ep: Categorizable, mode: TopologyMode, node: NodeContext): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return node.nodeName !== undefined && ep.forNodes.includes(node.nodeName);
    case 'PreferSameZone':
      return node.zone !== undefined && ep.forZones.includes(node.zone);
  }
}

/**
 * Returns, for each endpoint in order, whether new connections may go to it. Pure: the input is
 * not modified.
 */
export function categorizeEndpoints(
  endpoints: readonly Categorizable[],
  policy: InternalTrafficPolicy,
  node: NodeContext,
): boolean[] {
  const servingTerminating = (ep: Categorizable): boolean => ep.serving && ep.terminating;
  if (policy === 'Local') {
    const isLocal = (ep: Categorizable): boolean =>
      node.nodeName !== undefined && ep.nodeName === node.nodeName;
    if (endpoints.some((ep) => isLocal(ep) && ep.ready)) {
      return endpoints.map((ep) => isLocal(ep) && ep.ready);
    }
    return endpoints.map((ep) => isLocal(ep) && servingTerminating(ep));
  }
  const mode = topologyModeFromHints(endpoints, node);
  const chosen = endpoints.map((ep) => ep.ready && fitsTopology(ep, mode, node));
  if (chosen.some(Boolean)) return chosen;
  return endpoints.map(servingTerminating);
}
