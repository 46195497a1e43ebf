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
  returnDeletedObject: false,
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
