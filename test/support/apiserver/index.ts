/**
 * Stand-in Kubernetes API server for tests: see `FakeApiServer`. Typical use:
 *
 *   const api = await FakeApiServer.start();            // { tls: true, token } for HTTPS
 *   const kubeconfig = await api.writeKubeconfig(file);  // point the daemon at it
 *   api.upsert('services', svc); api.delete('services', 'default', 'web');
 *   await api.stop({ outage: 'reset' }); await api.restart(); await api.close();
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
