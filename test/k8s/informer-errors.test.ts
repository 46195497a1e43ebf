/**
 * Pins how @kubernetes/client-node 2.x's informer (ListWatch) REALLY behaves when things go
 * wrong. In short: every failure but 410 and the idle timeout emits 'error' and leaves the
 * informer stopped for good; the only back-off is on clean watch ends. The K8s source
 * (src/source/k8s/) owns restarts because of what is asserted here.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from '../support/apiserver/index.js';
import { service } from './fixtures.js';
import { sleep, waitFor } from './helpers.js';
import { BookmarkWatch, harness, type Harness } from './informer-recorder.js';

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

/** The informer is stopped: nothing new reaches the server for `ms`. */
async function expectNoRequestsFor(ms: number): Promise<void> {
  const before = api.requests.length;
  await sleep(ms);
  expect(api.requests.slice(before)).toEqual([]);
}

describe('client-node 2.x informer: failures', () => {
  it('HTTP 500 on the list: error (ApiException, code 500) and the informer stays stopped', async () => {
    api.failNext('list', 500);
    h = harness(api);
    await h.informer.start(); // never rejects
    expect(h.of('error')).toHaveLength(1);
    const err = h.of('error')[0]?.err as { code?: unknown; constructor: { name: string } };
    expect(err.constructor.name).toBe('ApiException');
    expect(err.code).toBe(500);
    await expectNoRequestsFor(1200);
  });

  it('HTTP 500 on the watch: error (statusCode 500), stopped; start() resumes from the old RV without relist', async () => {
    api.upsert('services', service('web'));
    h = harness(api);
    await h.informer.start();
    const rv = h.informer.latestResourceVersion();
    api.failNext('watch', 500);
    api.endWatches();
    await waitFor(() => h!.of('error').length === 1);
    expect((h.of('error')[0]?.err as { statusCode?: unknown }).statusCode).toBe(500);
    await expectNoRequestsFor(1200);
    await h.informer.start();
    expect(h.requests('list')).toHaveLength(1);
    expect(h.requests('watch').at(-1)?.query['resourceVersion']).toBe(rv);
    expect(h.informer.list()).toHaveLength(1); // the cache survived
  });

  it('dropped socket mid-stream: error (TypeError "terminated") and stopped', async () => {
    h = harness(api);
    await h.informer.start();
    api.dropWatches();
    await waitFor(() => h!.of('error').length === 1);
    const err = h.of('error')[0]?.err as Error;
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('terminated');
    await expectNoRequestsFor(1200);
  });

  it('ECONNREFUSED: error (TypeError "fetch failed", cause.code ECONNREFUSED) and stopped', async () => {
    api.upsert('services', service('web'));
    h = harness(api);
    await h.informer.start();
    await api.stop();
    await waitFor(() => h!.of('error').length === 1); // the drop at stop
    await h.informer.start();
    expect(h.of('error')).toHaveLength(2);
    const err = h.of('error')[1]?.err as Error & { cause?: { code?: string } };
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('fetch failed');
    expect(err.cause?.code).toBe('ECONNREFUSED');
    expect(h.of('delete')).toHaveLength(0); // the cache is kept
    expect(h.informer.list()).toHaveLength(1);
  });

  it('list without Content-Type: error and stopped', async () => {
    api.faults.listWithoutContentType = true;
    h = harness(api);
    await h.informer.start();
    expect(h.of('error')).toHaveLength(1);
    expect(String((h.of('error')[0]?.err as Error).message)).toMatch(/Content-Type/);
  });

  it('server closing every watch at once: 2.x backs off (0, 1 s, 2 s …) instead of storming', async () => {
    api.faults.closeWatchImmediately = true;
    h = harness(api);
    await h.informer.start();
    await sleep(3500);
    const n = h.requests('watch').length;
    // 1.4.0 sent 449 watches in 500 ms here. 2.x: t=0, 0, 1, 3 s.
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(5);
    expect(h.of('error')).toHaveLength(0);
    expect(h.requests('list')).toHaveLength(1);
  });

  it('server sending one event and closing every watch: 2.x resets its delay on each event and storms', async () => {
    api.faults.closeWatchImmediately = 'after-bookmark';
    h = harness(api, { watch: (kc) => new BookmarkWatch(kc) });
    await h.informer.start();
    // A storm is more than 50 watches; with any backoff (0, 1 s, 2 s ...) there would be at most
    // 5 in 5 s. Wait for the count rather than a fixed 500 ms, so a busy machine cannot fail it.
    const until = Date.now() + 5000;
    while (h.requests('watch').length <= 50 && Date.now() < until) await sleep(50);
    expect(h.requests('watch').length).toBeGreaterThan(50);
    expect(h.of('error')).toHaveLength(0);
  });

  it('idle watch: aborted after Watch.requestTimeoutMs (30 s by default) and re-watched silently', async () => {
    h = harness(api);
    // Private field in 2.0.1; if it is renamed this pin fails loudly, which is the point.
    const watch = (h.informer as unknown as { watch: Record<string, unknown> }).watch;
    expect(watch['requestTimeoutMs']).toBe(30_000);
    watch['requestTimeoutMs'] = 300;
    await h.informer.start();
    await waitFor(() => h!.requests('watch').length >= 3, 3000);
    expect(h.of('error')).toHaveLength(0);
    expect(h.requests('list')).toHaveLength(1);
    // The same timer covers waiting for the response headers.
    api.faults.watchHeaderDelayMs = 1000;
    const before = h.requests('watch').length;
    await sleep(1000);
    expect(h.requests('watch').length - before).toBeGreaterThanOrEqual(2);
    expect(h.of('error')).toHaveLength(0);
  });

  it('stop() emits error (AbortError)', async () => {
    h = harness(api);
    await h.informer.start();
    await h.informer.stop();
    await waitFor(() => h!.of('error').length === 1);
    expect((h.of('error')[0]?.err as Error).name).toBe('AbortError');
  });

  it('stop() during the reconnect delay does not prevent the delayed watch (a leaked watch)', async () => {
    api.faults.closeWatchImmediately = true;
    h = harness(api);
    await h.informer.start();
    await waitFor(() => h!.requests('watch').length === 2); // the next one waits 1 s
    await sleep(100);
    await h.informer.stop();
    await sleep(1200);
    expect(h.requests('watch')).toHaveLength(3);
  });

  it('a watch event with a null object crashes the process (unhandled rejection in the async watch handler)', async () => {
    const script = `
      import * as k8s from '@kubernetes/client-node';
      const kc = new k8s.KubeConfig();
      kc.loadFromOptions({ clusters: [{ name: 'c', server: process.argv[1], skipTLSVerify: true }],
        users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const inf = k8s.makeInformer(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
      inf.on('error', () => {});
      await inf.start();
      console.log('watching');
      setTimeout(() => { console.log('survived'); process.exit(0); }, 3000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, api.url], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor(() => out.includes('watching') && api.watchCount() === 1, 10_000);
    api.rawLine(JSON.stringify({ type: 'ADDED', object: null }));
    const code = await exited;
    expect(out).not.toContain('survived');
    expect(code).not.toBe(0);
    expect(out).toMatch(/TypeError/);
  });
});
