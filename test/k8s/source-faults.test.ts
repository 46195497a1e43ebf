/**
 * K8sSource against the stand-in API server when things go wrong: expiry, HTTP errors,
 * dropped sockets, an API server outage, reconnect storms, hung lists, stop().
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { K8sSource } from '../../src/source/k8s.js';
import { FakeApiServer } from '../support/apiserver/index.js';
import { service, slice } from './fixtures.js';
import { sleep, waitFor } from './helpers.js';
import { startSource, type Running } from './source-harness.js';

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

async function started(opts: Parameters<typeof startSource>[1] = {}): Promise<Running> {
  run = await startSource(api, opts);
  await waitFor(() => run!.sink.synced && api.watchCount() === 2);
  return run;
}

/** Samples each informer's request count every 50 ms while `during` runs. */
async function sampleRequests(
  source: K8sSource,
  during: () => Promise<void>,
): Promise<Record<'services' | 'endpointslices', { t: number; n: number }[]>> {
  const samples = {
    services: [] as { t: number; n: number }[],
    endpointslices: [] as { t: number; n: number }[],
  };
  const take = () => {
    for (const k of ['services', 'endpointslices'] as const) {
      const r = source.stats[k].requests;
      samples[k].push({ t: Date.now(), n: r.list + r.watch });
    }
  };
  take();
  const timer = setInterval(take, 50);
  try {
    await during();
  } finally {
    clearInterval(timer);
    take();
  }
  return samples;
}

/** Most requests seen within any window of at most 1 s between two samples. */
function maxPerSecond(samples: { t: number; n: number }[]): number {
  let max = 0;
  for (let i = 0; i < samples.length; i++) {
    for (let j = i + 1; j < samples.length && samples[j]!.t - samples[i]!.t <= 1000; j++) {
      max = Math.max(max, samples[j]!.n - samples[i]!.n);
    }
  }
  return max;
}

describe('K8sSource: faults', () => {
  it('410 after missed changes: relists, deletes what went away meanwhile, updates the rest', async () => {
    api.upsert('services', service('stays'));
    api.upsert('services', service('goes'));
    const { sink, source } = await started();
    await api.stop();
    api.delete('services', 'default', 'goes');
    api.upsert('services', service('stays', { port: 1 }));
    api.expire();
    await sleep(100);
    expect(sink.changes().filter((c) => c.startsWith('delete'))).toEqual([]); // not while down
    await api.restart();
    await waitFor(() => !sink.services.has('default/goes'), 5000);
    await waitFor(() => sink.servicePort('default/stays') === 1);
    expect(source.stats.services.relists).toBe(1);
    expect(source.stats.services.watchRestarts.expired).toBeGreaterThanOrEqual(1);
    expect(sink.changes().filter((c) => c.startsWith('delete'))).toEqual([
      'deleteService default/goes',
    ]);
  });

  it('ERROR 410 on an open watch: relist and carry on', async () => {
    const { sink, source, lines } = await started();
    api.expire('endpointslices');
    await waitFor(() => source.stats.endpointslices.relists === 1);
    api.upsert('endpointslices', slice('web-1', 'web', ['10.0.0.1']));
    await waitFor(() => sink.slices.size === 1);
    expect(lines.some((l) => l['kind'] === 'endpointslices' && l['reason'] === 'expired')).toBe(
      true,
    );
  });

  it('HTTP 500 on list and watch: restart with growing back-off, one warning per failure naming kind and reason', async () => {
    api.failNext('list', 500, 'services');
    const { sink, source, lines } = await started();
    api.failNext('watch', 500, 'services');
    api.failNext('watch', 500, 'services');
    api.endWatches('services');
    await waitFor(() => source.stats.services.watchRestarts['http-error'] === 3);
    await waitFor(() => api.watchCount('services') === 1);
    const warns = lines.filter((l) => l.level === 40 && l['kind'] === 'services');
    expect(warns.map((l) => l['reason'])).toEqual(['http-error', 'http-error', 'http-error']);
    const delays = warns.map((l) => l['delayMs'] as number);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    api.upsert('services', service('after'));
    await waitFor(() => sink.services.has('default/after'));
    expect(source.stats.services.requests.list).toBe(2); // the failed one and the good one
  });

  it('dropped sockets: restart from the last RV without relisting', async () => {
    api.upsert('services', service('web'));
    const { sink, source } = await started();
    const rv = String(api.store.resourceVersion);
    api.dropWatches();
    await waitFor(() => source.stats.services.watchRestarts['network-error'] === 1);
    await waitFor(() => api.watchCount() === 2);
    const last = api.requests.filter((r) => r.resource === 'services' && r.verb === 'watch').at(-1);
    expect(last?.query['resourceVersion']).toBe(rv);
    expect(source.stats.services.requests.list).toBe(1);
    expect(sink.services.has('default/web')).toBe(true);
  });

  it('API server down then back on the same port: state kept, changes made meanwhile applied, ≤ 5 requests/s per informer', async () => {
    api.upsert('services', service('web'));
    api.upsert('endpointslices', slice('web-1', 'web', ['10.0.0.1']));
    api.upsert('endpointslices', slice('web-2', 'web', ['10.0.0.2']));
    // Back-off nearly off: only the rate cap (default 3 + 2/s) bounds the requests here.
    const { sink, source, lines } = await started({
      backoff: { initialMs: 1, maxMs: 5 },
      rateLimit: undefined,
    });
    const callsBefore = sink.calls.length;
    const samples = await sampleRequests(source, async () => {
      await api.stop({ outage: 'reset' });
      api.upsert('services', service('web', { port: 9090 }));
      api.delete('endpointslices', 'default', 'web-2');
      await sleep(3000);
      expect(sink.calls.slice(callsBefore)).toEqual([]); // nothing, deletes least of all
      await api.restart();
      await waitFor(() => sink.servicePort('default/web') === 9090, 5000);
      await waitFor(() => !sink.slices.has('default/web-2'), 5000);
    });
    expect(maxPerSecond(samples.services)).toBeLessThanOrEqual(5);
    expect(maxPerSecond(samples.endpointslices)).toBeLessThanOrEqual(5);
    expect(api.outageConnections.length).toBeGreaterThan(2); // it did keep trying
    expect(sink.slices.has('default/web-1')).toBe(true);
    expect(source.stats.services.relists).toBe(0); // resumed from its RV
    expect(
      lines.some(
        (l) => l.level === 40 && l['kind'] === 'services' && l['reason'] === 'network-error',
      ),
    ).toBe(true);
  });

  it("server closing every watch at once, after a bookmark that resets client-node's delay: ≤ 5 requests/s per informer", async () => {
    const { source } = await started({ rateLimit: undefined });
    const samples = await sampleRequests(source, async () => {
      api.faults.closeWatchImmediately = 'after-bookmark';
      api.endWatches();
      await sleep(2500);
      api.faults.closeWatchImmediately = false;
    });
    expect(maxPerSecond(samples.services)).toBeLessThanOrEqual(5);
    expect(maxPerSecond(samples.endpointslices)).toBeLessThanOrEqual(5);
    expect(source.stats.services.watchRestarts.eof).toBeGreaterThanOrEqual(3);
    await waitFor(() => api.watchCount() === 2, 5000);
  });

  it('malformed events and list items are dropped, counted and logged; nothing crashes', async () => {
    api.faults.listExtraItems = [{ metadata: {} }, { spec: {} }];
    const { sink, source, lines } = await started();
    expect(source.stats.services.malformed).toBe(2);
    api.rawLine(JSON.stringify({ type: 'ADDED', object: null }), 'services');
    api.rawLine(JSON.stringify({ type: 'MODIFIED', object: { spec: {} } }), 'services');
    api.rawLine(JSON.stringify({ type: 'DELETED', object: { metadata: { name: 7 } } }), 'services');
    api.rawLine(JSON.stringify({ type: 'BOOKMARK', object: { metadata: {} } }), 'services');
    api.rawLine(JSON.stringify({ type: 'SURPRISE', object: {} }), 'services');
    api.rawLine(JSON.stringify({ type: 'ERROR', object: null }), 'services');
    api.rawLine('{"type": "ADDED", "obj', 'services'); // dropped by client-node, unseen
    api.errorEvent(500, 'services');
    api.upsert('services', service('fine'));
    await waitFor(() => sink.services.has('default/fine'));
    expect(source.stats.services.malformed).toBe(8);
    expect(
      lines.filter((l) => l.msg.includes('malformed') && l['kind'] === 'services'),
    ).toHaveLength(8);
    expect(lines.some((l) => l.msg.includes('ERROR event') && l['status'] === 500)).toBe(true);
    expect(source.stats.services.requests.watch).toBe(1); // the stream stayed up
  });

  it('a hung list is aborted after requestTimeoutMs and retried', async () => {
    api.faults.listDelayMs = 10_000;
    run = await startSource(api, { requestTimeoutMs: 200 });
    await waitFor(() => run!.source.stats.services.watchRestarts.timeout >= 1, 3000);
    api.faults.listDelayMs = 0;
    await waitFor(() => run!.sink.synced, 3000);
  });

  it('sink exceptions are logged and do not stop the stream', async () => {
    const { sink, lines } = await started();
    const original = sink.upsertService.bind(sink);
    sink.upsertService = (obj) => {
      if ((obj as { metadata: { name: string } }).metadata.name === 'bad') throw new Error('boom');
      original(obj);
    };
    api.upsert('services', service('bad'));
    api.upsert('services', service('good'));
    await waitFor(() => sink.services.has('default/good'));
    expect(lines.some((l) => l.level === 50 && String(l['err']).includes('boom'))).toBe(true);
  });

  it("stop(): no request starts and no sink call happens afterwards, even during client-node's reconnect delay", async () => {
    const { sink, source } = await started();
    api.faults.closeWatchImmediately = true;
    api.endWatches();
    await waitFor(() => source.stats.services.requests.watch >= 3); // now in the 2 s delay
    await source.stop();
    const sent = source.stats.services.requests.watch + source.stats.endpointslices.requests.watch;
    const calls = sink.calls.length;
    await sleep(100); // a request already on the wire may still land
    const requests = api.requests.length;
    api.faults.closeWatchImmediately = false;
    api.upsert('services', service('late'));
    await sleep(2500);
    expect(api.requests.length).toBe(requests);
    expect(source.stats.services.requests.watch + source.stats.endpointslices.requests.watch).toBe(
      sent,
    );
    expect(sink.calls.length).toBe(calls);
    expect(api.watchCount()).toBe(0);
    await source.stop(); // idempotent
  });

  it('stop() while a watch is on the wire: it is closed as soon as it opens', async () => {
    const { source } = await started();
    api.faults.watchHeaderDelayMs = 300;
    api.endWatches();
    await waitFor(() => source.stats.services.requests.watch === 2);
    await source.stop();
    await sleep(600);
    expect(api.watchCount()).toBe(0);
  });
});
