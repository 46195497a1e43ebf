// Minimal valid objects for the stand-in API server.

/** The label that hands a Service (and its slices) to a proxy. */
export const PROXY_LABEL = 'service.kubernetes.io/service-proxy-name';
/** Labels that select an object for kube-lc-proxy under the default selector. */
export const OURS = { [PROXY_LABEL]: 'kube-lc-proxy' } as const;

/** A ClusterIP Service with one TCP port named `grpc`. */
export function service(
  name: string,
  opts: {
    namespace?: string;
    labels?: Record<string, string>;
    clusterIP?: string;
    port?: number;
  } = {},
): Record<string, unknown> {
  return {
    metadata: { name, namespace: opts.namespace ?? 'default', labels: opts.labels ?? { ...OURS } },
    spec: {
      type: 'ClusterIP',
      clusterIP: opts.clusterIP ?? '10.96.0.10',
      clusterIPs: [opts.clusterIP ?? '10.96.0.10'],
      ipFamilies: ['IPv4'],
      ports: [{ name: 'grpc', port: opts.port ?? 50051, protocol: 'TCP', targetPort: 50051 }],
    },
  };
}

/** An IPv4 EndpointSlice for Service `svc` with the given ready addresses. */
export function slice(
  name: string,
  svc: string,
  addresses: readonly string[],
  opts: { namespace?: string; labels?: Record<string, string> } = {},
): Record<string, unknown> {
  return {
    metadata: {
      name,
      namespace: opts.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': svc, ...(opts.labels ?? OURS) },
    },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
  };
}

/** A Node with an optional zone label. */
export function node(name: string, zone?: string): Record<string, unknown> {
  return {
    metadata: { name, labels: zone ? { 'topology.kubernetes.io/zone': zone } : {} },
    spec: {},
  };
}
