import { applyJsonPatch } from './json-patch.js';
import { PatchError, isObject, type Json, type JsonObject } from './json-value.js';
import { applyMergePatch } from './merge-patch.js';
import { applyStrategicMergePatch, type PatchMeta } from './strategic.js';

export { applyJsonPatch } from './json-patch.js';
export { applyMergePatch } from './merge-patch.js';
export { applyStrategicMergePatch } from './strategic.js';
export type { PatchMeta } from './strategic.js';
export { PatchError, jsonEqual } from './json-value.js';
export type { Json, JsonObject } from './json-value.js';

/** The patch Content-Types the stand-in applies. Server-side apply is not one of them. */
export const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
] as const;

/** One of PATCH_TYPES. */
export type PatchType = (typeof PATCH_TYPES)[number];

/** Applies `patch` of `type` to `target`; throws PatchError when it cannot be applied. */
export function applyPatch(
  type: PatchType,
  target: JsonObject,
  patch: Json,
  meta: PatchMeta,
): JsonObject {
  const out =
    type === 'application/json-patch+json'
      ? applyJsonPatch(target, patch)
      : type === 'application/merge-patch+json'
        ? applyMergePatch(target, patch)
        : applyStrategicMergePatch(target, patch, meta);
  if (!isObject(out)) throw new PatchError('the patch did not leave an object');
  return out;
}
