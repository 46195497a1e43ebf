import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpBackend, waitFor } from '../support/backends.js';
import { startTestDaemon } from '../support/daemon.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.41.0/24.
const VIP = '127.0.41.50';
const BAD = '127.0.41.11';
const GOOD = '127.0.41.12';
const KEY = 'default/echo:grpc';
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

/**
 * A backend that accepts every connection and resets it before sending any byte. The reset
 * waits a moment: on loopback an immediate one reaches the proxy before its connect completes,
 * which is a failed dial (retried elsewhere, counted as `reset`); across a network it comes
 * after, which is the case under test.
 */
async function acceptThenReset(host: string): Promise<{ accepted: () => number }> {
  let accepted = 0;
  const server: Server = createServer((s: Socket) => {
    accepted++;
    s.on('error', () => {});
    setTimeout(() => s.resetAndDestroy(), 50);
  });
  server.listen({ host, port: 9000 });
  await once(server, 'listening');
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { accepted: () => accepted };
}

/** Connects and reads the greeting line; resolves with it, or with 'failed' on reset/close. */
function greeting(): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: VIP, port: 8080 });
    let buf = '';
    const done = (v: string): void => {
      s.destroy();
      resolve(v);
    };
    s.setEncoding('utf8');
    s.on('data', (x: string) => {
      buf += x;
      if (buf.includes('\n')) done(buf.trim());
    });
    s.on('error', () => done('failed'));
    s.on('close', () => done('failed'));
    setTimeout(() => done('failed'), 5_000).unref();
  });
}

describe('outlier ejection on early resets', () => {
  it('ejects a backend that accepts then resets, and sends new connections to the healthy one', async () => {
    const bad = await acceptThenReset(BAD);
    const good = await startTcpBackend(GOOD, 9000, { name: 'good' });
    cleanups.push(() => good.close());
    // A long base ejection: once ejected, the bad endpoint stays out for this whole test.
    // Per-endpoint series, to see which endpoint the failures are counted on.
    const d = await startTestDaemon([svc, endpointSlice('echo-1', [BAD, GOOD])], {
      metricsPerEndpoint: true,
    });
    cleanups.push(() => d.stop());
    const stats = async () => (await d.portStats(KEY))?.endpoints ?? [];

    // Sequential clients: ties rotate, so without ejection the bad endpoint would get every
    // other one (10 of 20). Ejected for 1 s, then 2 s, 4 s... it gets a handful at most, however
    // slow the machine.
    const results: string[] = [];
    for (let i = 0; i < 20; i++) results.push(await greeting());
    const failed = results.filter((r) => r === 'failed').length;
    const badStats = (await stats()).find((ep) => ep.key === `${BAD}:9000`);
    expect(badStats?.connectFailures.get('early_reset') ?? 0).toBeGreaterThanOrEqual(1);
    expect(failed).toBeGreaterThanOrEqual(1); // the reset client saw it: not replayed elsewhere
    expect(failed).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r === 'good').length).toBe(20 - failed);
    expect(bad.accepted()).toBe(failed);
    await waitFor('counts back to 0', async () =>
      (await stats()).every((ep) => ep.active === 0 && ep.draining === 0),
    );
    const metrics = await (await fetch(`${d.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /kube_lc_proxy_connect_failures_total\{[^}]*endpoint="127\.0\.41\.11:9000"[^}]*reason="early_reset"\} [1-9]/,
    );
  });

  it('doubles the ejection for early resets in a row, as for refused dials', async () => {
    await acceptThenReset(BAD);
    // The ejection state is the balancer's own, per thread: read here with the data path on
    // the test's thread (with workers each keeps its own, see docs/operations.md).
    const d = await startTestDaemon([svc, endpointSlice('echo-1', [BAD])], { workers: 0 });
    cleanups.push(() => d.stop());
    const p = d.daemon.proxier.get(KEY);
    const badStats = p?.balancer.get(`${BAD}:9000`);
    // Only one endpoint: it is tried even while ejected, and each reset lengthens the ejection.
    for (let i = 0; i < 3; i++) expect(await greeting()).toBe('failed');
    await waitFor('three early resets', () => (badStats?.consecutiveFailures ?? 0) >= 3);
    const left = (badStats?.ejectedUntil ?? 0) - Date.now();
    expect(left).toBeGreaterThan(1_000); // past the 1 s base: 4 s for the third in a row
  });
});
