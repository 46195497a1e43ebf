import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { notFound } from './api-error.js';
import type { FieldSelector } from './field-selector.js';
import { kindOf } from './kinds/index.js';
import { contentTypeOf } from './negotiate.js';
import type { Route } from './routes.js';
import type { LabelSelector } from './selector.js';
import { writeJson } from './status.js';
import { RESOURCES, type ObjectStore } from './store.js';
import { toTable, type IncludeObject } from './table.js';

/** The list-related fault switches (see Faults in server.ts). */
export interface ListFaults {
  readonly listWithoutContentType: boolean;
  readonly listExtraItems: readonly unknown[];
}

/** How to write objects: as themselves, or as a Table (server-side printing). */
export type Rendering =
  { readonly table: false } | { readonly table: true; readonly include: IncludeObject };

/** Answers a `get` of one object, with kind/apiVersion (or as a one-row Table); 404 + Status. */
export function writeObject(
  res: ServerResponse,
  store: ObjectStore,
  route: Route,
  rendering: Rendering,
): void {
  const spec = kindOf(route.resource);
  const obj = store.get(route.resource, route.namespace, route.name ?? '');
  if (!obj) {
    const err = notFound(spec, route.name ?? '');
    return writeJson(res, 404, err.toStatus());
  }
  if (rendering.table) {
    const table = toTable(spec, [obj], obj.metadata.resourceVersion, rendering.include);
    return writeJson(res, 200, table, contentTypeOf('table'));
  }
  const { kind, apiVersion } = RESOURCES[route.resource];
  writeJson(res, 200, { kind, apiVersion, ...obj });
}

/**
 * Answers a list as the API server does: `<Kind>List` with `metadata.resourceVersion` = the
 * current global RV and items WITHOUT kind/apiVersion, filtered by namespace and selectors; or
 * the same rows as a Table. `limit` is ignored (no `continue`): a server may return everything.
 */
export function writeList(
  res: ServerResponse,
  store: ObjectStore,
  route: Route,
  selector: LabelSelector,
  fields: FieldSelector,
  rendering: Rendering,
  faults: ListFaults,
): void {
  if (res.destroyed) return;
  const { kind, apiVersion } = RESOURCES[route.resource];
  const selected = store
    .list(route.resource)
    .filter((o) => route.namespace === undefined || o.metadata.namespace === route.namespace)
    .filter((o) => selector.matches(o.metadata.labels) && fields.matches(o));
  const rv = String(store.resourceVersion);
  if (rendering.table) {
    const table = toTable(kindOf(route.resource), selected, rv, rendering.include);
    return writeJson(res, 200, table, contentTypeOf('table'));
  }
  const items: unknown[] = [...selected, ...faults.listExtraItems];
  const body = JSON.stringify({
    kind: `${kind}List`,
    apiVersion,
    metadata: { resourceVersion: rv },
    items,
  });
  const headers: OutgoingHttpHeaders = { 'Content-Length': Buffer.byteLength(body) };
  if (!faults.listWithoutContentType) headers['Content-Type'] = 'application/json';
  res.writeHead(200, headers);
  res.end(body);
}

/** Listens on `host`:`port`, retrying briefly while the port is still busy (restarts). */
export async function listenOn(server: Server, host: string, port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return;
    } catch (err) {
      const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!busy || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
