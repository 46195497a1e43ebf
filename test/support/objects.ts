/**
 * Builders for Service and EndpointSlice objects shaped as `kubectl get -o yaml` prints them.
 * Tests use them for the file source, the service table and the stand-in API server alike.
 */

export interface ServiceOptions {
  namespace?: string;
  clusterIP?: string;
  ports?: { name?: string; port: number; protocol?: string }[];
  labels?: Record<string, string>;
  type?: string;
  internalTrafficPolicy?: string;
}

export function service(name: string, opts: ServiceOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: opts.namespace ?? 'default', labels: opts.labels ?? {} },
    spec: {
      type: opts.type ?? 'ClusterIP',
      clusterIP: opts.clusterIP ?? '10.96.0.10',
      ports: (opts.ports ?? [{ name: 'grpc', port: 8080 }]).map((p) => ({
        name: p.name ?? '',
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        targetPort: p.port,
      })),
      ...(opts.internalTrafficPolicy ? { internalTrafficPolicy: opts.internalTrafficPolicy } : {}),
    },
  };
}

export interface EndpointOptions {
  ready?: boolean | null;
  serving?: boolean | null;
  terminating?: boolean | null;
  nodeName?: string;
  zone?: string;
  forZones?: string[];
  forNodes?: string[];
}

export type EndpointSpecInput = string | ({ ip: string } & EndpointOptions);

export interface SliceOptions {
  namespace?: string;
  service?: string;
  addressType?: string;
  ports?: { name?: string | null; port: number | null; protocol?: string }[];
  labels?: Record<string, string>;
}

export function endpointSlice(
  name: string,
  endpoints: EndpointSpecInput[],
  opts: SliceOptions = {},
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: opts.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': opts.service ?? 'echo', ...(opts.labels ?? {}) },
    },
    addressType: opts.addressType ?? 'IPv4',
    ports: (opts.ports ?? [{ name: 'grpc', port: 9000 }]).map((p) => ({
      ...(p.name === null ? {} : { name: p.name ?? '' }),
      ...(p.port === null ? {} : { port: p.port }),
      protocol: p.protocol ?? 'TCP',
    })),
    endpoints: endpoints.map((e) => {
      const o: EndpointOptions & { ip: string } = typeof e === 'string' ? { ip: e } : e;
      const conditions: Record<string, boolean> = {};
      for (const k of ['ready', 'serving', 'terminating'] as const) {
        const v = o[k] === undefined ? (k === 'terminating' ? false : true) : o[k];
        if (v !== null) conditions[k] = v;
      }
      return {
        addresses: [o.ip],
        conditions,
        ...(o.nodeName ? { nodeName: o.nodeName } : {}),
        ...(o.zone ? { zone: o.zone } : {}),
        ...(o.forZones || o.forNodes
          ? {
              hints: {
                ...(o.forZones ? { forZones: o.forZones.map((n) => ({ name: n })) } : {}),
                ...(o.forNodes ? { forNodes: o.forNodes.map((n) => ({ name: n })) } : {}),
              },
            }
          : {}),
      };
    }),
  };
}
