import { isObject, type Json } from './json-value.js';

/**
 * RFC 7386 JSON Merge Patch (`application/merge-patch+json`, what `kubectl label`, `annotate`
 * and `patch --type merge` send): objects merge recursively, `null` removes a member, anything
 * else (arrays included) replaces. Pure; returns a new value.
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}
