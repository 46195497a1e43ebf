import { ENDPOINT_SLICE } from './endpointslice.js';
import { LEASE } from './lease.js';
import { NODE } from './node.js';
import { SERVICE } from './service.js';
import { apiVersionOf, type KindSpec } from './types.js';

export * from './types.js';

/**
 * The resources the stand-in serves, in discovery order. To serve another one, write its
 * `KindSpec` beside these and add it here: store, routes, discovery, tables, patches and
 * watches all read this list.
 */
export const KINDS: readonly KindSpec[] = [SERVICE, NODE, ENDPOINT_SLICE, LEASE];

/** The name of a served resource; keep in step with KINDS (a test checks both ways). */
export type Resource = 'services' | 'endpointslices' | 'nodes' | 'leases';

const BY_RESOURCE = new Map<string, KindSpec>(KINDS.map((k) => [k.resource, k]));

/** The spec of `resource`; throws for a name not in KINDS (a test bug, not a request). */
export function kindOf(resource: string): KindSpec {
  const k = BY_RESOURCE.get(resource);
  if (!k) throw new Error(`the stand-in serves no resource "${resource}"`);
  return k;
}

/** Wire facts per resource: `kind`/`apiVersion` of watch objects and lists, and scope. */
export const RESOURCES: Readonly<
  Record<Resource, { kind: string; apiVersion: string; namespaced: boolean }>
> = Object.fromEntries(
  KINDS.map((k) => [
    k.resource,
    { kind: k.kind, apiVersion: apiVersionOf(k), namespaced: k.namespaced },
  ]),
) as Record<Resource, { kind: string; apiVersion: string; namespaced: boolean }>;
