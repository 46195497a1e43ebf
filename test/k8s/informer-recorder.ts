import {
  CoreV1Api,
  ListWatch,
  makeInformer,
  Watch,
  type KubeConfig,
  type V1Service,
} from '@kubernetes/client-node';
import type { FakeApiServer, RequestLogEntry } from '../support/apiserver/index.js';
import { kubeConfigFor } from './helpers.js';

/** One informer callback, as recorded. */
export interface Recorded {
  readonly type: 'add' | 'update' | 'delete' | 'connect' | 'error';
  readonly name?: string;
  readonly rv?: string;
  readonly err?: unknown;
  readonly time: number;
}

/** A client-node informer on `/api/v1/services` plus everything it reported. */
export interface Harness {
  readonly informer: ListWatch<V1Service>;
  readonly events: Recorded[];
  readonly kc: KubeConfig;
  of(type: Recorded['type']): Recorded[];
  /** Requests the stand-in saw for services, by verb. */
  requests(verb?: RequestLogEntry['verb']): RequestLogEntry[];
}

/**
 * Wires the REAL `makeInformer` (or a `ListWatch` over a given `Watch`) to a plain-http
 * stand-in and records every callback. The list function passes `listSelector` through, as
 * the notes advise; `makeInformer` itself gives the selector only to the watch.
 */
export function harness(
  api: FakeApiServer,
  opts: { watchSelector?: string; listSelector?: string; watch?: (kc: KubeConfig) => Watch } = {},
): Harness {
  const kc = kubeConfigFor(api);
  const core = kc.makeApiClient(CoreV1Api);
  const listFn = () =>
    core.listServiceForAllNamespaces(
      opts.listSelector !== undefined ? { labelSelector: opts.listSelector } : {},
    );
  const informer = opts.watch
    ? new ListWatch<V1Service>(
        '/api/v1/services',
        opts.watch(kc),
        listFn,
        false,
        opts.watchSelector,
      )
    : // makeInformer returns a ListWatch; its declared type hides latestResourceVersion().
      (makeInformer<V1Service>(
        kc,
        '/api/v1/services',
        listFn,
        opts.watchSelector,
      ) as ListWatch<V1Service>);
  const events: Recorded[] = [];
  const obj = (type: Recorded['type']) => (o: V1Service) =>
    events.push({
      type,
      name: o.metadata?.name,
      rv: o.metadata?.resourceVersion,
      time: Date.now(),
    });
  informer.on('add', obj('add'));
  informer.on('update', obj('update'));
  informer.on('delete', obj('delete'));
  informer.on('connect', () => events.push({ type: 'connect', time: Date.now() }));
  informer.on('error', (err: unknown) => events.push({ type: 'error', err, time: Date.now() }));
  return {
    informer,
    events,
    kc,
    of: (type) => events.filter((e) => e.type === type),
    requests: (verb) =>
      api.requests.filter((r) => r.resource === 'services' && (!verb || r.verb === verb)),
  };
}

/** A `Watch` that adds `allowWatchBookmarks=true` to every watch request. */
export class BookmarkWatch extends Watch {
  override watch(...args: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    const [path, query, cb, done] = args;
    return super.watch(path, { ...query, allowWatchBookmarks: true }, cb, done);
  }
}
