/**
 * Stand-in Kubernetes API server for tests and local trials: see `FakeApiServer`. Typical use:
 *
 *   const api = await FakeApiServer.start();            // { tls: true, token } for HTTPS
 *   const kubeconfig = await api.writeKubeconfig(file);  // point the daemon or kubectl at it
 *   api.upsert('services', svc); api.delete('services', 'default', 'web');
 *   await api.stop({ outage: 'reset' }); await api.restart(); await api.close();
 *
 * Over HTTP it serves what client-node informers and kubectl use: discovery, /version, an
 * OpenAPI v3 index, get/list/watch (JSON or Table), create, replace, patch and delete with the
 * registry's rules. The served resources are the KindSpecs in `kinds/` (Services,
 * EndpointSlices, Leases, Nodes read by name); adding one is a new KindSpec. Run it on its own
 * with `npm run apiserver -- --kubeconfig FILE` (cli.ts).
 */
export { FakeApiServer } from './server.js';
export type { FakeApiServerOptions, Faults, OutageMode, RequestLogEntry } from './server.js';
export type { RequestVerb } from './request-info.js';
export { ObjectStore, RESOURCES } from './store.js';
export type { Preconditions, Resource, StoreEvent, StoredObject } from './store.js';
export { KINDS, kindOf } from './kinds/index.js';
export type { KindSpec } from './kinds/index.js';
export { ApiError } from './api-error.js';
export * from './patch/index.js';
export { parseLabelSelector, SelectorParseError } from './selector.js';
export type { LabelSelector, Labels } from './selector.js';
export { SERVICEACCOUNT_DIR, writeInClusterRoot, writeKubeconfig } from './kubeconfig.js';
export type { InClusterRoot, KubeconfigTarget } from './kubeconfig.js';
export { selfSignedCertificate } from './tls.js';
export type { KeyPair } from './tls.js';
export { statusObject } from './status.js';
export { parseRoute } from './routes.js';
export type { Route } from './routes.js';
