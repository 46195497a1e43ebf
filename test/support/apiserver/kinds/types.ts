import type { FieldSchema } from './schema.js';

/**
 * What the stand-in knows about one resource: its wire names (discovery, routes, watch objects),
 * the registry strategy facts a client can observe (create-on-update, unconditional update),
 * server-side defaults, how `kubectl get` prints it, and the strategic-merge-patch merge keys.
 * A new resource is one `KindSpec` added to the list in `kinds/index.ts`.
 */
export interface KindSpec {
  /** Plural resource name, as in the URL: `services`. */
  readonly resource: string;
  readonly kind: string;
  /** API group, '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly namespaced: boolean;
  /** Lower-case singular name (`service`) and short names (`svc`) for discovery. */
  readonly singular: string;
  readonly shortNames: readonly string[];
  /** Verbs served, as discovery lists them. Requests for other verbs get 405. */
  readonly verbs: readonly Verb[];
  /** PUT of a missing object creates it (registry strategy `AllowCreateOnUpdate`). */
  readonly allowCreateOnUpdate: boolean;
  /** PUT without metadata.resourceVersion is allowed (`AllowUnconditionalUpdate`). */
  readonly allowUnconditionalUpdate: boolean;
  /** DELETE answers with the deleted object (`ReturnDeletedObject`), else with a Status. */
  readonly returnDeletedObject: boolean;
  /**
   * `status` is a subresource: the registry drops it on create and keeps the stored one on
   * update and patch of the main resource (tests can still set it with `upsert`).
   */
  readonly statusSubresource: boolean;
  /**
   * Fills in the defaults the real registry sets on create and update, and normalizes what
   * decoding normalizes; mutates `obj`. May throw ApiError (400) for a value decoding rejects.
   */
  readonly defaults?: (obj: Record<string, unknown>) => void;
  /** The columns `kubectl get` shows (server-side printing, `as=Table`). */
  readonly table: TableSpec;
  /**
   * Strategic-merge-patch facts: dotted paths of lists (from the object root, e.g.
   * `spec.ports`) mapped to their merge key; lists not named here are replaced whole
   * (`atomic`), as in the Go types' `patchStrategy` tags.
   */
  readonly mergeKeys: Readonly<Record<string, string>>;
  /** Dotted paths of primitive lists with `patchStrategy:"merge"` (e.g. finalizers). */
  readonly mergePrimitiveLists: readonly string[];
  /** Known fields, for `?fieldValidation=` (Strict, Warn, Ignore). */
  readonly fields: FieldSchema;
}

/** The verbs of the API (discovery names). */
export type Verb = 'create' | 'delete' | 'get' | 'list' | 'patch' | 'update' | 'watch';

/** One printed column: metav1.TableColumnDefinition without `description`'s prose. */
export interface Column {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date';
  readonly format: string;
  readonly description: string;
  /** 0 for `kubectl get`, 1 for the extra columns of `-o wide`. */
  readonly priority: number;
}

/** The printed form of a resource. `cells` returns one cell per column. */
export interface TableSpec {
  readonly columns: readonly Column[];
  cells(obj: Readonly<Record<string, unknown>>, now: number): unknown[];
}

/** The wire apiVersion: `v1` for the core group, else `group/version`. */
export function apiVersionOf(spec: Pick<KindSpec, 'group' | 'version'>): string {
  return spec.group === '' ? spec.version : `${spec.group}/${spec.version}`;
}

/** The URL prefix of the group version: `/api/v1` or `/apis/group/version`. */
export function prefixOf(spec: Pick<KindSpec, 'group' | 'version'>): string {
  return spec.group === '' ? `/api/${spec.version}` : `/apis/${spec.group}/${spec.version}`;
}

/** `services` or `leases.coordination.k8s.io`, as error messages name a resource. */
export function qualifiedResource(spec: Pick<KindSpec, 'group' | 'resource'>): string {
  return spec.group === '' ? spec.resource : `${spec.resource}.${spec.group}`;
}

/**
 * Every verb the stand-in serves for a full resource. `deletecollection` is not one of them
 * (DELETE on a collection is 405), so discovery does not claim it.
 */
export const ALL_VERBS: readonly Verb[] = [
  'create',
  'delete',
  'get',
  'list',
  'patch',
  'update',
  'watch',
];

/** The standard Name column (`format: name`, which kubectl uses for `-o name`). */
export const NAME_COLUMN: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
};

/** The standard Age column (translated timestamp, as the apiserver prints it). */
export const AGE_COLUMN: Column = {
  name: 'Age',
  type: 'string',
  format: '',
  description:
    'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
};

/** The apiserver's short age: 45s, 3m12s, 5h, 2d3h (apimachinery duration.HumanDuration, no years). */
export function humanAge(createdIso: unknown, now: number): string {
  const t = typeof createdIso === 'string' ? Date.parse(createdIso) : NaN;
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 24 * 8) return h % 24 === 0 ? `${h / 24}d` : `${Math.floor(h / 24)}d${h % 24}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Reads `obj.a.b.c` without throwing; undefined when any step is missing. */
export function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** A JSON object value, or undefined for anything else (arrays included). */
export function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** The metadata fields the real server keeps as merge lists on every kind. */
export const METADATA_MERGE_KEYS: Readonly<Record<string, string>> = {
  'metadata.ownerReferences': 'uid',
  'metadata.managedFields': 'manager',
};
