/**
 * Pins how @kubernetes/client-node 2.x's informer (ListWatch) REALLY behaves against the
 * stand-in API server: the normal paths. Failures live in informer-errors.test.ts. The K8s
 * source relies on every behaviour asserted here; if an upgrade changes one, fix the source
 * (src/source/k8s/) together with the test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from '../support/apiserver/index.js';
import { OURS, PROXY_LABEL, service } from './fixtures.js';
import { sleep, waitFor } from './helpers.js';
import { BookmarkWatch, harness, type Harness } from './informer-recorder.js';

const SELECTOR = `${PROXY_LABEL}=kube-lc-proxy`;

let api: FakeApiServer;
let h: Harness | undefined;

beforeEach(async () => {
  api = await FakeApiServer.start();
});

afterEach(async () => {
  await h?.informer.stop();
  h = undefined;
  await api.close();
});

describe('client-node 2.x informer: normal paths', () => {
  it('initial list: lists without RV, adds each item, then watches from the list RV', async () => {
    api.upsert('services', service('a'));
    api.upsert('services', service('b'));
    h = harness(api, { watchSelector: SELECTOR });
    await h.informer.start(); // resolves once the watch's response headers arrived
    expect(h.of('add').map((e) => e.name)).toEqual(['a', 'b']);
    expect(h.events[0]?.type).toBe('connect'); // fired before the list: not "connected"
    const [list] = h.requests('list');
    const [watch] = h.requests('watch');
    // makeInformer's selector reaches the WATCH only: the list went out unfiltered.
    expect(list?.query).toEqual({});
    expect(watch?.query).toEqual({
      watch: 'true',
      resourceVersion: String(api.store.resourceVersion),
      labelSelector: SELECTOR,
    });
    // 2.x asks for no bookmarks, no timeoutSeconds, no sendInitialEvents.
    expect(watch?.query['allowWatchBookmarks']).toBeUndefined();
    expect(watch?.query['timeoutSeconds']).toBeUndefined();
  });

  it('sends the selector on the list only when the list function passes it', async () => {
    api.upsert('services', service('mine'));
    api.upsert('services', service('theirs', { labels: { [PROXY_LABEL]: 'other' } }));
    h = harness(api, { watchSelector: SELECTOR, listSelector: SELECTOR });
    await h.informer.start();
    expect(h.requests('list')[0]?.query).toEqual({ labelSelector: SELECTOR });
    expect(h.informer.list().map((s) => s.metadata?.name)).toEqual(['mine']);
  });

  it('list items lose kind/apiVersion and get Date timestamps; watch objects stay raw JSON', async () => {
    api.upsert('services', service('listed'));
    h = harness(api);
    await h.informer.start();
    const listed = h.informer.get('listed', 'default') as unknown as Record<string, unknown>;
    expect(listed['kind']).toBeUndefined();
    expect((listed['metadata'] as { creationTimestamp: unknown }).creationTimestamp).toBeInstanceOf(
      Date,
    );
    api.upsert('services', service('watched'));
    await waitFor(() => h!.informer.get('watched', 'default'));
    const watched = h.informer.get('watched', 'default') as unknown as Record<string, unknown>;
    expect(watched['kind']).toBe('Service');
    expect(typeof (watched['metadata'] as { creationTimestamp: unknown }).creationTimestamp).toBe(
      'string',
    );
  });

  it('watch events: ADDED → add, MODIFIED → update, DELETED → delete', async () => {
    h = harness(api);
    await h.informer.start();
    api.upsert('services', service('web'));
    api.upsert('services', service('web', { port: 8080 }));
    api.delete('services', 'default', 'web');
    await waitFor(() => h!.of('delete').length === 1);
    expect(h.events.filter((e) => e.type !== 'connect').map((e) => `${e.type} ${e.name}`)).toEqual([
      'add web',
      'update web',
      'delete web',
    ]);
    expect(h.informer.latestResourceVersion()).toBe(String(api.store.resourceVersion));
  });

  it('selector watch: an object that stops matching arrives as delete, one that starts as add', async () => {
    api.upsert('services', service('web'));
    h = harness(api, { watchSelector: SELECTOR, listSelector: SELECTOR });
    await h.informer.start();
    api.upsert('services', service('web', { labels: {} }));
    await waitFor(() => h!.of('delete').length === 1);
    api.upsert('services', service('web', { labels: { ...OURS } }));
    await waitFor(() => h!.of('add').length === 2);
    expect(h.informer.list()).toHaveLength(1);
  });

  it('bookmarks: never asked for by 2.x, so never sent; when asked, the next re-watch uses the bookmark RV', async () => {
    h = harness(api);
    await h.informer.start();
    expect(api.bookmark('services')).toBe(0);

    await h.informer.stop();
    h = harness(api, { watch: (kc) => new BookmarkWatch(kc) });
    await h.informer.start();
    const before = h.informer.latestResourceVersion();
    api.upsert('endpointslices', { metadata: { name: 'elsewhere' } }); // global RV moves
    expect(api.bookmark('services')).toBe(1);
    const moved = String(api.store.resourceVersion);
    await waitFor(() => h!.informer.latestResourceVersion() === moved);
    expect(moved).not.toBe(before);
    expect(h.of('update')).toHaveLength(0);
    api.endWatches('services');
    const rewatch = await api.waitForRequest(
      (r) => r.verb === 'watch' && r.query['resourceVersion'] === moved,
    );
    expect(rewatch.query['allowWatchBookmarks']).toBe('true');
  });

  it('clean watch end: re-watch from the last RV, no relist, no error; the second end without an event in between waits 1 s', async () => {
    api.upsert('services', service('web'));
    h = harness(api);
    await h.informer.start();
    const rv = h.informer.latestResourceVersion();
    const t0 = Date.now();
    api.endWatches();
    await waitFor(() => h!.requests('watch').length === 2 && api.watchCount() === 1);
    const t1 = h.requests('watch')[1]!.time;
    api.endWatches();
    await waitFor(() => h!.requests('watch').length === 3 && api.watchCount() === 1, 3000);
    const t2 = h.requests('watch')[2]!.time;
    expect(t1 - t0).toBeLessThan(800); // first re-watch at once, not after 1 s
    expect(t2 - t1).toBeGreaterThanOrEqual(900); // then BASE_RECONNECT_DELAY_MS = 1000
    expect(h.requests('list')).toHaveLength(1);
    expect(h.requests('watch').map((r) => r.query['resourceVersion'])).toEqual([rv, rv, rv]);
    expect(h.of('error')).toHaveLength(0);
    expect(h.of('connect')).toHaveLength(3);
    // An event resets the delay: the next end re-watches at once again.
    api.upsert('services', service('web', { port: 1 }));
    await waitFor(() => h!.of('update').length === 1);
    const t3 = Date.now();
    api.endWatches();
    await waitFor(() => h!.requests('watch').length === 4);
    expect(h.requests('watch')[3]!.time - t3).toBeLessThan(800);
  });

  it('ERROR 410 event: relists without an error and deletes objects that went away meanwhile', async () => {
    api.upsert('services', service('stays'));
    api.upsert('services', service('goes'));
    h = harness(api);
    await h.informer.start();
    // Make the client miss a delete: hold its next watch, change state, compact.
    api.faults.watchHeaderDelayMs = 200;
    api.endWatches();
    await waitFor(() => h!.requests('watch').length === 2);
    api.delete('services', 'default', 'goes');
    api.upsert('services', service('stays', { port: 1 }));
    api.expire('services');
    api.faults.watchHeaderDelayMs = 0;
    await waitFor(() => h!.requests('list').length === 2, 3000);
    await waitFor(() => h!.of('delete').length === 1);
    expect(h.of('delete')[0]?.name).toBe('goes');
    expect(h.of('update').map((e) => e.name)).toEqual(['stays']);
    expect(h.of('error')).toHaveLength(0);
    expect(h.informer.list().map((s) => s.metadata?.name)).toEqual(['stays']);
  });

  it('ERROR 410 on an open watch (compaction): relist, then watch from the new RV', async () => {
    h = harness(api);
    await h.informer.start();
    api.expire('services');
    await waitFor(() => h!.requests('list').length === 2);
    await waitFor(() => h!.requests('watch').length === 2);
    expect(h.requests('list')[1]?.query['resourceVersion']).toBeUndefined();
    expect(h.of('error')).toHaveLength(0);
  });

  it('HTTP 410 on a watch: relist without an error, then the watch waits the reconnect delay', async () => {
    h = harness(api);
    await h.informer.start();
    api.failNext('watch', 410);
    api.endWatches();
    await waitFor(() => h!.requests('list').length === 2, 3000);
    const relisted = h.requests('list')[1]!.time;
    await waitFor(() => api.watchCount() === 1, 3000);
    expect(h.requests('watch')[2]!.time - relisted).toBeGreaterThanOrEqual(900);
    expect(h.of('error')).toHaveLength(0);
  });

  it('non-410 ERROR events and garbage lines are dropped silently; the stream stays open', async () => {
    h = harness(api);
    await h.informer.start();
    api.errorEvent(500);
    api.garbageLine();
    api.upsert('services', service('after'));
    await waitFor(() => h!.of('add').length === 1);
    await sleep(50);
    expect(h.of('error')).toHaveLength(0);
    expect(h.requests('watch')).toHaveLength(1);
    expect(api.watchCount()).toBe(1);
  });
});
