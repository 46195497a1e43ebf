import {
  AGE_COLUMN,
  ALL_VERBS,
  METADATA_MERGE_KEYS,
  NAME_COLUMN,
  at,
  humanAge,
  type KindSpec,
} from './types.js';
import { badRequest } from '../api-error.js';
import { TYPE_META } from './schema.js';

/**
 * A metav1.MicroTime as the apiserver stores it: RFC 3339 in UTC with exactly six fraction
 * digits (`2026-01-01T00:00:00.123000Z`). Anything that is not RFC 3339 is a decoding error.
 */
export function microTime(value: unknown, field: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(String(value));
  if (typeof value !== 'string' || !m || Number.isNaN(Date.parse(value))) {
    throw badRequest(
      `Lease in version "v1" cannot be handled as a Lease: ${field}: not an RFC 3339 time: ${JSON.stringify(value)}`,
    );
  }
  const fraction = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  if (m[3] === 'Z') return `${m[1]}.${fraction}Z`;
  const utc = new Date(Date.parse(`${m[1]}${m[3]}`)).toISOString().slice(0, 19);
  return `${utc}.${fraction}Z`;
}

/** Stores acquireTime and renewTime as MicroTime. */
function defaults(obj: Record<string, unknown>): void {
  const spec = obj['spec'];
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return;
  const s = spec as Record<string, unknown>;
  for (const f of ['acquireTime', 'renewTime']) {
    if (s[f] !== undefined && s[f] !== null) s[f] = microTime(s[f], `spec.${f}`);
  }
}

/**
 * coordination.k8s.io/v1 Lease, for leader election. As in the real registry, an update must
 * carry `metadata.resourceVersion` (no unconditional update: a stale one gets 409 Conflict) and
 * a PUT of a missing Lease creates it.
 */
export const LEASE: KindSpec = {
  resource: 'leases',
  kind: 'Lease',
  group: 'coordination.k8s.io',
  version: 'v1',
  namespaced: true,
  singular: 'lease',
  shortNames: [],
  verbs: ALL_VERBS,
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: false,
  statusSubresource: false,
  returnDeletedObject: false,
  defaults,
  table: {
    columns: [
      NAME_COLUMN,
      {
        name: 'Holder',
        type: 'string',
        format: '',
        description: 'holderIdentity contains the identity of the holder of a current lease.',
        priority: 0,
      },
      AGE_COLUMN,
    ],
    cells: (obj, now) => [
      at(obj, 'metadata.name'),
      at(obj, 'spec.holderIdentity') ?? '',
      humanAge(at(obj, 'metadata.creationTimestamp'), now),
    ],
  },
  mergeKeys: { ...METADATA_MERGE_KEYS },
  mergePrimitiveLists: ['metadata.finalizers'],
  fields: {
    ...TYPE_META,
    spec: {
      holderIdentity: 'string',
      leaseDurationSeconds: 'integer',
      acquireTime: 'string',
      renewTime: 'string',
      leaseTransitions: 'integer',
      strategy: 'string',
      preferredHolder: 'string',
    },
  },
};
