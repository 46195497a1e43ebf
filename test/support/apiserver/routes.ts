import type { Resource } from './store.js';

/** A parsed API path. `name` is set for single-object paths (`get`). */
export interface Route {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

const PREFIX: Readonly<Record<string, readonly Resource[]>> = {
  '/api/v1': ['services', 'nodes'],
  '/apis/discovery.k8s.io/v1': ['endpointslices'],
};

const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Maps a request path to a resource: `<prefix>/<resource>[/<name>]` and, for namespaced
 * resources, `<prefix>/namespaces/<ns>/<resource>[/<name>]`. Anything else is undefined (404).
 */
export function parseRoute(pathname: string): Route | undefined {
  for (const [prefix, resources] of Object.entries(PREFIX)) {
    if (!pathname.startsWith(`${prefix}/`)) continue;
    const parts = pathname.slice(prefix.length + 1).split('/');
    let namespace: string | undefined;
    if (parts[0] === 'namespaces' && parts.length >= 3) {
      namespace = parts[1];
      parts.splice(0, 2);
      if (namespace === undefined || !SEGMENT.test(namespace)) return undefined;
    }
    const [res, name, ...rest] = parts;
    if (rest.length > 0 || !resources.includes(res as Resource)) return undefined;
    const resource = res as Resource;
    if (namespace !== undefined && resource === 'nodes') return undefined;
    if (name !== undefined && !SEGMENT.test(name)) return undefined;
    return { resource, namespace, name };
  }
  return undefined;
}
