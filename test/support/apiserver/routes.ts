import { KINDS, prefixOf, type Resource } from './kinds/index.js';

/** A parsed API path. `name` is set for single-object paths. */
export interface Route {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Group-version prefix (`/api/v1`, `/apis/discovery.k8s.io/v1`) to the resources under it. */
const PREFIX = new Map<string, { resource: Resource; namespaced: boolean }[]>();
for (const k of KINDS) {
  const list = PREFIX.get(prefixOf(k)) ?? [];
  list.push({ resource: k.resource as Resource, namespaced: k.namespaced });
  PREFIX.set(prefixOf(k), list);
}

/**
 * Maps a request path to a resource: `<prefix>/<resource>[/<name>]` and, for namespaced
 * resources, `<prefix>/namespaces/<ns>/<resource>[/<name>]`. Anything else (subresources,
 * unknown resources, a namespace on a cluster-scoped resource) is undefined: 404.
 */
export function parseRoute(pathname: string): Route | undefined {
  for (const [prefix, resources] of PREFIX) {
    if (!pathname.startsWith(`${prefix}/`)) continue;
    const parts = pathname.slice(prefix.length + 1).split('/');
    let namespace: string | undefined;
    if (parts[0] === 'namespaces' && parts.length >= 3) {
      namespace = parts[1];
      parts.splice(0, 2);
      if (namespace === undefined || !SEGMENT.test(namespace)) return undefined;
    }
    const [res, name, ...rest] = parts;
    const served = resources.find((r) => r.resource === res);
    if (rest.length > 0 || !served) return undefined;
    if (namespace !== undefined && !served.namespaced) return undefined;
    if (name !== undefined && !SEGMENT.test(name)) return undefined;
    return { resource: served.resource, namespace, name };
  }
  return undefined;
}
