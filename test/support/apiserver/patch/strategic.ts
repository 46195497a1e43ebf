import { isObject, jsonEqual, PatchError, type Json, type JsonObject } from './json-value.js';

/** Which lists of a kind merge, and by what key (see KindSpec.mergeKeys). */
export interface PatchMeta {
  /** Dotted path from the root (`spec.ports`) to the merge key of a list of objects. */
  readonly mergeKeys: Readonly<Record<string, string>>;
  /** Dotted paths of primitive lists that merge as sets (`metadata.finalizers`). */
  readonly mergePrimitiveLists: readonly string[];
}

const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';
const RETAIN_KEYS = '$retainKeys';
const PATCH = '$patch';

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** A patch value with its directives and nulls removed, for a field the original lacks. */
function clean(v: Json, path: string, meta: PatchMeta): Json | undefined {
  if (Array.isArray(v)) {
    return v
      .filter((x) => !(isObject(x) && (x[PATCH] === 'delete' || x[PATCH] === 'replace')))
      .map((x) => clean(x, path, meta) as Json);
  }
  if (!isObject(v)) return v;
  if (v[PATCH] === 'delete') return undefined;
  return mergeMap({}, v, path, meta);
}

function mergeMap(orig: JsonObject, patch: JsonObject, path: string, meta: PatchMeta): JsonObject {
  const directive = patch[PATCH];
  if (directive === 'replace') {
    const { [PATCH]: _drop, ...rest } = patch;
    return mergeMap({}, rest, path, meta);
  }
  if (directive !== undefined && directive !== 'merge') {
    throw new PatchError(`unknown patch type "${String(directive)}" in map at "${path}"`);
  }
  let out: JsonObject = { ...orig };
  const retain = patch[RETAIN_KEYS];
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw new PatchError(`${RETAIN_KEYS} must be a list at "${path}"`);
    const keep = new Set(retain.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === PATCH || k === RETAIN_KEYS || k.startsWith(SET_ORDER)) continue;
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      const gone = Array.isArray(v) ? v : [];
      const list = out[field];
      if (Array.isArray(list)) out[field] = list.filter((x) => !gone.some((g) => jsonEqual(g, x)));
      continue;
    }
    const p = join(path, k);
    if (v === null) {
      delete out[k];
    } else if (isObject(v)) {
      if (v[PATCH] === 'delete') delete out[k];
      else out[k] = mergeMap(isObject(out[k]) ? (out[k] as JsonObject) : {}, v, p, meta);
    } else if (Array.isArray(v)) {
      out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, p, meta);
    } else {
      out[k] = v;
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER)) continue;
    const field = k.slice(SET_ORDER.length);
    const list = out[field];
    if (Array.isArray(list) && Array.isArray(v))
      out[field] = reorder(list, v, join(path, field), meta);
  }
  return out;
}

function mergeList(orig: Json[], patch: Json[], path: string, meta: PatchMeta): Json[] {
  if (patch.some((x) => isObject(x) && x[PATCH] === 'replace')) {
    return clean(patch, path, meta) as Json[];
  }
  const key = meta.mergeKeys[path];
  if (key !== undefined) {
    const out = orig.map((x) => structuredClone(x));
    for (const item of patch) {
      if (!isObject(item) || !Object.hasOwn(item, key)) {
        throw new PatchError(`map in list at "${path}" has no merge key "${key}"`);
      }
      const i = out.findIndex((x) => isObject(x) && jsonEqual(x[key], item[key]));
      if (item[PATCH] === 'delete') {
        if (i >= 0) out.splice(i, 1);
      } else if (i >= 0) {
        out[i] = mergeMap(out[i] as JsonObject, item, path, meta);
      } else {
        out.push(mergeMap({}, item, path, meta));
      }
    }
    return out;
  }
  if (meta.mergePrimitiveLists.includes(path)) {
    const out = [...orig];
    for (const v of patch) if (!out.some((x) => jsonEqual(x, v))) out.push(v);
    return out;
  }
  return clean(patch, path, meta) as Json[];
}

/**
 * `$setElementOrder/<field>`: the order the client wants. Items it names come first, in that
 * order; items only the server has keep their relative order after them. (apimachinery
 * interleaves server-only items by their old neighbours; for the lists of these kinds,
 * written whole by kubectl, the results agree.)
 */
function reorder(list: Json[], order: Json[], path: string, meta: PatchMeta): Json[] {
  const key = meta.mergeKeys[path];
  const pos = (x: Json): number =>
    order.findIndex((o) =>
      key !== undefined && isObject(o) && isObject(x) ? jsonEqual(o[key], x[key]) : jsonEqual(o, x),
    );
  const named = list.filter((x) => pos(x) >= 0).sort((a, b) => pos(a) - pos(b));
  return [...named, ...list.filter((x) => pos(x) < 0)];
}

/**
 * Strategic merge patch (`application/strategic-merge-patch+json`), what `kubectl apply`
 * (client side), `kubectl edit` and `kubectl patch` send for built-in kinds. Maps merge and
 * `null` deletes; lists named in `meta.mergeKeys` merge item by item on their key (e.g. Service
 * `spec.ports` by `port`); primitive lists in `meta.mergePrimitiveLists` merge as sets; every
 * other list is replaced. Directives: `$patch: replace|delete|merge` in maps and list items,
 * `$setElementOrder/`, `$deleteFromPrimitiveList/`, `$retainKeys`. Pure; returns a new object.
 */
export function applyStrategicMergePatch(
  target: JsonObject,
  patch: unknown,
  meta: PatchMeta,
): JsonObject {
  if (!isObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object', 400);
  return mergeMap(target, patch, '', meta);
}
