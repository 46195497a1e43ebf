/**
 * One object shape for both client-node paths. List items come through the generated
 * ObjectSerializer (no `kind`/`apiVersion`, timestamps as `Date`, unknown fields dropped);
 * watch objects are raw JSON. Every list item is converted here to the watch (wire) shape
 * before the informer caches it, so the cache, the informer's own comparisons (by
 * metadata.resourceVersion, a string in both shapes) and the sink all see one form. Fields the
 * generated model does not know are still missing from listed objects: nothing here relies on
 * them. Pure.
 */

/** Identity of an object: namespace ('' for cluster-scoped) and name. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The key of a decoded object, or undefined when it cannot be one of ours: `metadata` must be
 * an object with a non-empty string `name`, a string (or absent) `namespace` and a non-empty
 * string `resourceVersion`.
 */
export function objectKey(obj: unknown): ObjectKey | undefined {
  if (!isRecord(obj) || !isRecord(obj['metadata'])) return undefined;
  const { name, namespace, resourceVersion } = obj['metadata'];
  if (typeof name !== 'string' || name === '') return undefined;
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    return undefined;
  }
  if (typeof resourceVersion !== 'string' || resourceVersion === '') return undefined;
  return { namespace: namespace ?? '', name };
}

/** RFC 3339 in the API server's form: whole seconds print without a fraction. */
function rfc3339(d: Date): string {
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.000Z$/, 'Z');
}

function plain(v: unknown): unknown {
  if (v instanceof Date) return rfc3339(v);
  if (Array.isArray(v)) return v.map(plain);
  if (isRecord(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  return v;
}

/**
 * A deep copy of `obj` in wire shape: `kind` and `apiVersion` set, `Date`s as RFC 3339
 * strings, `undefined` fields removed.
 */
export function toWireShape(
  obj: object,
  kind: string,
  apiVersion: string,
): Record<string, unknown> {
  const body = plain(obj) as Record<string, unknown>;
  delete body['kind'];
  delete body['apiVersion'];
  return { kind, apiVersion, ...body };
}
