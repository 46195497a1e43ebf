import { TYPE_META } from './schema.js';
import {
  AGE_COLUMN,
  NAME_COLUMN,
  METADATA_MERGE_KEYS,
  at,
  humanAge,
  type KindSpec,
} from './types.js';

/**
 * core/v1 Node, readable by name only (the proxy reads its own node's zone label). Tests put
 * nodes in with `upsert`; no list, watch or write over HTTP.
 */
export const NODE: KindSpec = {
  resource: 'nodes',
  kind: 'Node',
  group: '',
  version: 'v1',
  namespaced: false,
  singular: 'node',
  shortNames: ['no'],
  verbs: ['get'],
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  statusSubresource: true,
  returnDeletedObject: false,
  table: {
    columns: [NAME_COLUMN, AGE_COLUMN],
    cells: (obj, now) => [
      at(obj, 'metadata.name'),
      humanAge(at(obj, 'metadata.creationTimestamp'), now),
    ],
  },
  mergeKeys: { ...METADATA_MERGE_KEYS, 'status.conditions': 'type', 'status.addresses': 'type' },
  mergePrimitiveLists: ['metadata.finalizers'],
  fields: { ...TYPE_META, spec: 'any', status: 'any' },
};
