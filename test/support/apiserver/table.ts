import { apiVersionOf, type KindSpec } from './kinds/index.js';
import type { StoredObject } from './store.js';

/** `?includeObject=`: what each row carries besides its cells (default Metadata). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** Reads `includeObject` from the query; anything else than the three values is 400 upstream. */
export function includeObjectOf(
  query: Readonly<Record<string, string>>,
): IncludeObject | undefined {
  const v = query['includeObject'] ?? 'Metadata';
  return v === 'None' || v === 'Metadata' || v === 'Object' ? v : undefined;
}

function rowObject(spec: KindSpec, o: StoredObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return { kind: spec.kind, apiVersion: apiVersionOf(spec), ...o };
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

/**
 * A meta.k8s.io/v1 Table of `objects` as the apiserver's printers make it: the kind's column
 * definitions, one row per object with its cells and (per `include`) its metadata or the object.
 * kubectl adds the NAMESPACE column of `-A` and the labels of `--show-labels` from the row's
 * metadata, so Metadata must be there by default.
 */
export function toTable(
  spec: KindSpec,
  objects: readonly StoredObject[],
  resourceVersion: string | undefined,
  include: IncludeObject,
  now = Date.now(),
): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: resourceVersion !== undefined ? { resourceVersion } : {},
    columnDefinitions: spec.table.columns,
    rows: objects.map((o) => {
      const object = rowObject(spec, o, include);
      return { cells: spec.table.cells(o, now), ...(object !== undefined ? { object } : {}) };
    }),
  };
}
