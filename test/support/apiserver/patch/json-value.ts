/** A parsed JSON value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A JSON object (not an array, not null). */
export type JsonObject = { [k: string]: Json };

/** Whether `v` is a JSON object (arrays and null are not). */
export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep equality of two JSON values (object key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

/** Thrown for a patch that cannot be applied; the server answers 422 (or 400, see `status`). */
export class PatchError extends Error {
  readonly status: 400 | 409 | 422;
  constructor(message: string, status: 400 | 409 | 422 = 422) {
    super(message);
    this.status = status;
  }
}
