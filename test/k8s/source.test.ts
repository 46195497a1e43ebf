/**
 * K8sSource against the stand-in API server, driven by the real client-node informer: the
 * normal paths and selection. Faults: source-faults.test.ts; config, TLS and node zone:
 * source-config.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALL_SERVICES_SELECTOR } from '../../src/source/k8s.js';
import { FakeApiServer } from '../support/apiserver/index.js';
import { OURS, PROXY_LABEL, service, slice } from './fixtures.js';
import { sleep, waitFor } from './helpers.js';
import { startSource, type Running } from './source-harness.js';

const OUR_SELECTOR = `${PROXY_LABEL}=kube-lc-proxy`;

let api: FakeApiServer;
let run: Running | undefined;

beforeEach(async () => {
  api = await FakeApiServer.start();
});

afterEach(async () => {
  await run?.source.stop();
  run = undefined;
  await api.close();
});

describe('K8sSource: lists, watches and commits', () => {
  it('initial list of both kinds, then commit(true) only once both are listed', async () => {
    api.upsert('services', service('web'));
    api.upsert('endpointslices', slice('web-abc', 'web', ['10.0.0.1']));
    api.failNext('list', 500, 'endpointslices'); // slices list late
    run = await startSource(api);
    const { sink, source } = run;
    await waitFor(() => sink.synced);
    const firstSynced = sink.calls.indexOf('commit true');
    expect(sink.calls.indexOf('upsertEndpointSlice default/web-abc')).toBeLessThan(firstSynced);
    expect(sink.calls.slice(0, firstSynced)).toContain('upsertService default/web');
    expect(sink.calls.slice(0, firstSynced).filter((c) => c.startsWith('commit'))).not.toContain(
      'commit true',
    );
    expect(source.synced).toBe(true);
    expect(source.stats.services.synced && source.stats.endpointslices.synced).toBe(true);
    expect(source.stats.endpointslices.watchRestarts['http-error']).toBe(1);
    // Listed objects reach the sink in the watch (wire) shape.
    const web = sink.services.get('default/web')!;
    expect(web['kind']).toBe('Service');
    expect(web['apiVersion']).toBe('v1');
    expect(typeof (web['metadata'] as { creationTimestamp?: unknown }).creationTimestamp).toBe(
      'string',
    );
    expect(sink.slices.get('default/web-abc')?.['apiVersion']).toBe('discovery.k8s.io/v1');
  });

  it('the selector goes to the list AND the watch of both kinds; watches ask for bookmarks', async () => {
    run = await startSource(api);
    await waitFor(() => run!.sink.synced && api.watchCount() === 2);
    for (const resource of ['services', 'endpointslices'] as const) {
      const reqs = api.requests.filter((r) => r.resource === resource);
      const list = reqs.find((r) => r.verb === 'list');
      const watch = reqs.find((r) => r.verb === 'watch');
      expect(list?.query['labelSelector']).toBe(OUR_SELECTOR);
      expect(watch?.query['labelSelector']).toBe(OUR_SELECTOR);
      expect(watch?.query['allowWatchBookmarks']).toBe('true');
      expect(watch?.query['resourceVersion']).toBe(String(api.store.resourceVersion));
    }
  });

  it('add, update, delete of Services and EndpointSlices reach the sink, each burst committed', async () => {
    run = await startSource(api);
    const { sink } = run;
    await waitFor(() => sink.synced && api.watchCount() === 2);
    sink.calls.length = 0;
    // Services and EndpointSlices come on two watches, whose events have no order between them:
    // each step waits for the one before to reach the sink.
    api.upsert('services', service('web'));
    await waitFor(() => sink.services.size === 1);
    api.upsert('endpointslices', slice('web-abc', 'web', ['10.0.0.1']));
    await waitFor(() => sink.slices.size === 1);
    api.upsert('services', service('web', { port: 8080 }));
    await waitFor(() => sink.servicePort('default/web') === 8080);
    api.delete('endpointslices', 'default', 'web-abc');
    await waitFor(() => sink.slices.size === 0);
    api.delete('services', 'default', 'web');
    await waitFor(() => sink.services.size === 0 && sink.slices.size === 0);
    await sleep(20);
    expect(sink.changes()).toEqual([
      'upsertService default/web',
      'upsertEndpointSlice default/web-abc',
      'upsertService default/web',
      'deleteEndpointSlice default/web-abc',
      'deleteService default/web',
    ]);
    expect(sink.calls.at(-1)).toBe('commit true');
    expect(sink.calls.filter((c) => c === 'commit false')).toHaveLength(0);
    expect(run.source.stats.services.lastSyncTime).toBeGreaterThan(0);
  });

  it('default selection: Services of other proxies never arrive; relabelling in or out adds or deletes', async () => {
    api.upsert('services', service('theirs', { labels: { [PROXY_LABEL]: 'other' } }));
    api.upsert('services', service('plain', { labels: {} }));
    api.upsert('services', service('mine'));
    run = await startSource(api);
    const { sink } = run;
    await waitFor(() => sink.synced && api.watchCount() === 2);
    expect([...sink.services.keys()]).toEqual(['default/mine']);
    api.upsert('services', service('mine', { labels: {} })); // stops matching
    await waitFor(() => sink.services.size === 0);
    api.upsert('services', service('plain', { labels: { ...OURS } })); // starts matching
    await waitFor(() => sink.services.has('default/plain'));
    expect(sink.changes().slice(-2)).toEqual([
      'deleteService default/mine',
      'upsertService default/plain',
    ]);
  });

  it('allServices: kube-proxy selection (no proxy name, not headless) on list and watch', async () => {
    api.upsert('services', service('plain', { labels: {} }));
    api.upsert('services', service('ours', { labels: { ...OURS } }));
    api.upsert('endpointslices', slice('plain-1', 'plain', ['10.0.0.1'], { labels: {} }));
    api.upsert(
      'endpointslices',
      slice('headless-1', 'headless', ['10.0.0.2'], {
        labels: { 'service.kubernetes.io/headless': '' },
      }),
    );
    run = await startSource(api, { allServices: true });
    const { sink } = run;
    await waitFor(() => sink.synced && api.watchCount() === 2);
    expect([...sink.services.keys()]).toEqual(['default/plain']);
    expect([...sink.slices.keys()]).toEqual(['default/plain-1']);
    expect(
      api.requests
        .filter((r) => r.verb === 'list' || r.verb === 'watch')
        .map((r) => r.query['labelSelector']),
    ).toEqual([
      ALL_SERVICES_SELECTOR,
      ALL_SERVICES_SELECTOR,
      ALL_SERVICES_SELECTOR,
      ALL_SERVICES_SELECTOR,
    ]);
    api.upsert('services', service('late', { labels: {} }));
    await waitFor(() => sink.services.has('default/late'));
  });

  it('bookmark: moves the resume point without touching the sink; the next watch starts from it', async () => {
    run = await startSource(api);
    const { sink, source } = run;
    await waitFor(() => sink.synced && api.watchCount() === 2);
    api.upsert('endpointslices', slice('web-abc', 'web', ['10.0.0.1'])); // moves the global RV
    await waitFor(() => sink.slices.size === 1);
    const changes = sink.changes().length;
    expect(api.bookmark('services')).toBe(1);
    const rv = String(api.store.resourceVersion);
    await sleep(50);
    api.endWatches('services');
    await api.waitForRequest(
      (r) => r.resource === 'services' && r.verb === 'watch' && r.query['resourceVersion'] === rv,
    );
    expect(sink.changes()).toHaveLength(changes);
    expect(source.stats.services.requests.list).toBe(1);
  });

  it('clean watch end: re-watch from the last RV, no relist, counted as eof, no warning', async () => {
    api.upsert('services', service('web'));
    run = await startSource(api);
    const { sink, source, lines } = run;
    await waitFor(() => sink.synced && api.watchCount() === 2);
    const rv = String(api.store.resourceVersion);
    api.endWatches();
    await waitFor(() => source.stats.services.requests.watch === 2 && api.watchCount() === 2);
    const rewatch = api.requests.filter((r) => r.resource === 'services' && r.verb === 'watch')[1];
    expect(rewatch?.query['resourceVersion']).toBe(rv);
    expect(source.stats.services.requests.list).toBe(1);
    expect(source.stats.services.relists).toBe(0);
    expect(source.stats.services.watchRestarts.eof).toBe(1);
    expect(sink.changes().filter((c) => c.startsWith('delete'))).toEqual([]);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    api.upsert('services', service('web', { port: 1 }));
    await waitFor(() => sink.servicePort('default/web') === 1);
  });
});
