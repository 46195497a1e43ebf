import {
  AGE_COLUMN,
  ALL_VERBS,
  METADATA_MERGE_KEYS,
  NAME_COLUMN,
  at,
  humanAge,
  type KindSpec,
} from './types.js';
import { TYPE_META } from './schema.js';

/** At most 3 entries, then "+ N more..." (the apiserver printer's listWithMoreString). */
function firstThree(list: string[]): string {
  if (list.length === 0) return '<unset>';
  if (list.length <= 3) return list.join(',');
  return `${list.slice(0, 3).join(',')} + ${list.length - 3} more...`;
}

function portsCell(ports: unknown): string {
  if (!Array.isArray(ports)) return '<unset>';
  return firstThree(
    ports.map((p: Record<string, unknown>) =>
      typeof p['port'] === 'number'
        ? String(p['port'])
        : typeof p['name'] === 'string'
          ? p['name']
          : '*',
    ),
  );
}

function endpointsCell(endpoints: unknown): string {
  if (!Array.isArray(endpoints)) return '<unset>';
  const addrs: string[] = [];
  for (const e of endpoints) {
    if (Array.isArray(e?.addresses)) addrs.push(...e.addresses.map(String));
  }
  return firstThree(addrs);
}

/** Registry defaults: port protocol TCP. */
function defaults(obj: Record<string, unknown>): void {
  if (!Array.isArray(obj['ports'])) return;
  for (const p of obj['ports'] as Record<string, unknown>[]) {
    if (p !== null && typeof p === 'object') p['protocol'] ??= 'TCP';
  }
}

/**
 * discovery.k8s.io/v1 EndpointSlice. `endpoints` and `ports` are atomic lists (no patch
 * strategy in the Go types): a strategic merge patch replaces them whole.
 */
export const ENDPOINT_SLICE: KindSpec = {
  resource: 'endpointslices',
  kind: 'EndpointSlice',
  group: 'discovery.k8s.io',
  version: 'v1',
  namespaced: true,
  singular: 'endpointslice',
  shortNames: [],
  verbs: ALL_VERBS,
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  statusSubresource: false,
  returnDeletedObject: false,
  defaults,
  table: {
    columns: [
      NAME_COLUMN,
      {
        name: 'AddressType',
        type: 'string',
        format: '',
        description: 'addressType specifies the type of address carried by this EndpointSlice.',
        priority: 0,
      },
      {
        name: 'Ports',
        type: 'string',
        format: '',
        description:
          'ports specifies the list of network ports exposed by each endpoint in this slice.',
        priority: 0,
      },
      {
        name: 'Endpoints',
        type: 'string',
        format: '',
        description: 'endpoints is a list of unique endpoints in this slice.',
        priority: 0,
      },
      AGE_COLUMN,
    ],
    cells: (obj, now) => [
      at(obj, 'metadata.name'),
      at(obj, 'addressType') ?? '',
      portsCell(at(obj, 'ports')),
      endpointsCell(at(obj, 'endpoints')),
      humanAge(at(obj, 'metadata.creationTimestamp'), now),
    ],
  },
  mergeKeys: { ...METADATA_MERGE_KEYS },
  mergePrimitiveLists: ['metadata.finalizers'],
  fields: {
    ...TYPE_META,
    addressType: 'string',
    endpoints: [
      {
        addresses: ['string'],
        conditions: { ready: 'boolean', serving: 'boolean', terminating: 'boolean' },
        hostname: 'string',
        targetRef: {
          kind: 'string',
          namespace: 'string',
          name: 'string',
          uid: 'string',
          apiVersion: 'string',
          resourceVersion: 'string',
          fieldPath: 'string',
        },
        deprecatedTopology: 'string-map',
        nodeName: 'string',
        zone: 'string',
        hints: { forZones: [{ name: 'string' }], forNodes: [{ name: 'string' }] },
      },
    ],
    ports: [{ name: 'string', protocol: 'string', port: 'integer', appProtocol: 'string' }],
  },
};
