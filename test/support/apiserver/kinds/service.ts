import {
  AGE_COLUMN,
  ALL_VERBS,
  METADATA_MERGE_KEYS,
  NAME_COLUMN,
  asRecord,
  at,
  humanAge,
  type KindSpec,
} from './types.js';
import { CONDITION, TYPE_META } from './schema.js';

function portsCell(ports: unknown): string {
  if (!Array.isArray(ports) || ports.length === 0) return '<none>';
  return ports
    .map((p: Record<string, unknown>) => {
      const proto = typeof p['protocol'] === 'string' ? p['protocol'] : 'TCP';
      const node = typeof p['nodePort'] === 'number' ? `:${p['nodePort']}` : '';
      return `${String(p['port'])}${node}/${proto}`;
    })
    .join(',');
}

function selectorCell(sel: unknown): string {
  const r = asRecord(sel);
  if (!r || Object.keys(r).length === 0) return '<none>';
  return Object.keys(r)
    .sort()
    .map((k) => `${k}=${String(r[k])}`)
    .join(',');
}

function externalIpCell(obj: Readonly<Record<string, unknown>>): string {
  const type = at(obj, 'spec.type');
  const ips = at(obj, 'spec.externalIPs');
  const list = Array.isArray(ips) ? ips.map(String) : [];
  if (type === 'ExternalName') return String(at(obj, 'spec.externalName') ?? '<none>');
  if (type === 'LoadBalancer') {
    const ingress = at(obj, 'status.loadBalancer.ingress');
    if (Array.isArray(ingress)) {
      for (const i of ingress) list.push(String(i.ip ?? i.hostname ?? ''));
    }
    return list.length > 0 ? list.join(',') : '<pending>';
  }
  return list.length > 0 ? list.join(',') : '<none>';
}

/**
 * Registry defaults of a Service the proxy reads: type, sessionAffinity, port protocol and
 * targetPort, single-stack IPv4 families, internalTrafficPolicy. The stand-in does not
 * allocate ClusterIPs or nodePorts: give `spec.clusterIP` in the object.
 */
function defaults(obj: Record<string, unknown>): void {
  const spec = asRecord(obj['spec']) ?? {};
  obj['spec'] = spec;
  spec['type'] ??= 'ClusterIP';
  spec['sessionAffinity'] ??= 'None';
  if (Array.isArray(spec['ports'])) {
    for (const p of spec['ports'] as Record<string, unknown>[]) {
      if (asRecord(p) === undefined) continue;
      p['protocol'] ??= 'TCP';
      p['targetPort'] ??= p['port'];
    }
  }
  const ip = spec['clusterIP'];
  if (spec['type'] !== 'ExternalName' && typeof ip === 'string' && ip !== '') {
    spec['clusterIPs'] ??= [ip];
    if (ip !== 'None') {
      spec['ipFamilies'] ??= [ip.includes(':') ? 'IPv6' : 'IPv4'];
      spec['ipFamilyPolicy'] ??= 'SingleStack';
    }
    spec['internalTrafficPolicy'] ??= 'Cluster';
  }
  obj['status'] ??= { loadBalancer: {} };
}

/** core/v1 Service. */
export const SERVICE: KindSpec = {
  resource: 'services',
  kind: 'Service',
  group: '',
  version: 'v1',
  namespaced: true,
  singular: 'service',
  shortNames: ['svc'],
  verbs: ALL_VERBS,
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  statusSubresource: true,
  returnDeletedObject: true,
  defaults,
  table: {
    columns: [
      NAME_COLUMN,
      {
        name: 'Type',
        type: 'string',
        format: '',
        description: 'type determines how the Service is exposed.',
        priority: 0,
      },
      {
        name: 'Cluster-IP',
        type: 'string',
        format: '',
        description: 'clusterIP is the IP address of the service.',
        priority: 0,
      },
      {
        name: 'External-IP',
        type: 'string',
        format: '',
        description:
          'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.',
        priority: 0,
      },
      {
        name: 'Port(s)',
        type: 'string',
        format: '',
        description: 'The list of ports that are exposed by this service.',
        priority: 0,
      },
      AGE_COLUMN,
      {
        name: 'Selector',
        type: 'string',
        format: '',
        description:
          'Route service traffic to pods with label keys and values matching this selector.',
        priority: 1,
      },
    ],
    cells: (obj, now) => [
      at(obj, 'metadata.name'),
      at(obj, 'spec.type') ?? 'ClusterIP',
      (at(obj, 'spec.clusterIP') as string | undefined) || '<none>',
      externalIpCell(obj),
      portsCell(at(obj, 'spec.ports')),
      humanAge(at(obj, 'metadata.creationTimestamp'), now),
      selectorCell(at(obj, 'spec.selector')),
    ],
  },
  mergeKeys: {
    ...METADATA_MERGE_KEYS,
    'spec.ports': 'port',
    'status.conditions': 'type',
  },
  mergePrimitiveLists: ['metadata.finalizers'],
  fields: {
    ...TYPE_META,
    spec: {
      ports: [
        {
          name: 'string',
          protocol: 'string',
          appProtocol: 'string',
          port: 'integer',
          targetPort: 'int-or-string',
          nodePort: 'integer',
        },
      ],
      selector: 'string-map',
      clusterIP: 'string',
      clusterIPs: ['string'],
      type: 'string',
      externalIPs: ['string'],
      sessionAffinity: 'string',
      loadBalancerIP: 'string',
      loadBalancerSourceRanges: ['string'],
      externalName: 'string',
      externalTrafficPolicy: 'string',
      healthCheckNodePort: 'integer',
      publishNotReadyAddresses: 'boolean',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 'integer' } },
      ipFamilies: ['string'],
      ipFamilyPolicy: 'string',
      allocateLoadBalancerNodePorts: 'boolean',
      loadBalancerClass: 'string',
      internalTrafficPolicy: 'string',
      trafficDistribution: 'string',
    },
    status: {
      loadBalancer: {
        ingress: [
          {
            ip: 'string',
            hostname: 'string',
            ipMode: 'string',
            ports: [{ port: 'integer', protocol: 'string', error: 'string' }],
          },
        ],
      },
      conditions: [CONDITION],
    },
  },
};
