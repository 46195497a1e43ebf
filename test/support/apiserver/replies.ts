import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import type { Route } from './routes.js';
import type { LabelSelector } from './selector.js';
import { writeStatus } from './status.js';
import { RESOURCES, type ObjectStore } from './store.js';

/** The list-related fault switches (see Faults in server.ts). */
export interface ListFaults {
  readonly listWithoutContentType: boolean;
  readonly listExtraItems: readonly unknown[];
}

/** Answers a `get` of one object, with kind/apiVersion, or 404 + Status. */
export function writeObject(res: ServerResponse, store: ObjectStore, route: Route): void {
  const obj = store.get(route.resource, route.namespace, route.name ?? '');
  if (!obj) return writeStatus(res, 404, `${route.resource} "${route.name}" not found`);
  const { kind, apiVersion } = RESOURCES[route.resource];
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ kind, apiVersion, ...obj }));
}

/**
 * Answers a list as the API server does: `<Kind>List` with `metadata.resourceVersion` = the
 * current global RV and items WITHOUT kind/apiVersion, filtered by namespace and selector.
 */
export function writeList(
  res: ServerResponse,
  store: ObjectStore,
  route: Route,
  selector: LabelSelector,
  faults: ListFaults,
): void {
  if (res.destroyed) return;
  const { kind, apiVersion } = RESOURCES[route.resource];
  const items: unknown[] = store
    .list(route.resource)
    .filter((o) => route.namespace === undefined || o.metadata.namespace === route.namespace)
    .filter((o) => selector.matches(o.metadata.labels));
  items.push(...faults.listExtraItems);
  const body = JSON.stringify({
    kind: `${kind}List`,
    apiVersion,
    metadata: { resourceVersion: String(store.resourceVersion) },
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
