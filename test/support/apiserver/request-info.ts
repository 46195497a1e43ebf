import { negotiate } from './negotiate.js';
import type { Rendering } from './replies.js';
import type { Route } from './routes.js';
import { includeObjectOf } from './table.js';

/** The API verb of a request; 'other' for non-resource paths and unsupported methods. */
export type RequestVerb =
  'list' | 'watch' | 'get' | 'create' | 'update' | 'patch' | 'delete' | 'other';

/** The verb of a request, from its method, route and `?watch=`. */
export function verbOf(method: string, route: Route | undefined, isWatch: boolean): RequestVerb {
  if (!route) return 'other';
  if (route.name === undefined) {
    if (method === 'GET') return isWatch ? 'watch' : 'list';
    return method === 'POST' ? 'create' : 'other';
  }
  if (method === 'GET') return 'get';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (method === 'DELETE') return 'delete';
  return 'other';
}

/** How to render objects: Table (with `?includeObject=`) when Accept asks for it; undefined for a bad includeObject. */
export function renderingOf(
  accept: string | undefined,
  query: Readonly<Record<string, string>>,
): Rendering | undefined {
  if (negotiate(accept, ['table']) !== 'table') return { table: false };
  const include = includeObjectOf(query);
  return include === undefined ? undefined : { table: true, include };
}
