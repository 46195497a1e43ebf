import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, DEFAULT_DAEMON_CONFIG } from '../../src/daemon/daemon.js';
import { FileSource, type FileSourceOptions } from '../../src/source/file.js';
import { startTcpBackend, waitFor } from '../support/backends.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';

// Addresses of this file: 127.0.42.0/24.
const VIP = '127.0.42.50';
const EP = '127.0.42.11';
const svc = service('echo', { clusterIP: VIP, ports: [{ name: 'grpc', port: 8080 }] });
const objects = [svc, endpointSlice('echo-1', [EP])];

/** The pathological text of the report: 20 MB of lines no YAML parser likes. */
function garbage(bytes: number): string {
  const line = '\t- : ][ {{ garbage line with : colons and "quotes\n';
  return line.repeat(Math.ceil(bytes / line.length));
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

interface Running {
  readonly daemon: Daemon;
  readonly source: FileSource;
  readonly file: ManifestsFile;
  readonly logs: Record<string, unknown>[];
  readonly metricsUrl: string;
}

async function start(
  initial: readonly unknown[] | string,
  opts: Partial<FileSourceOptions> = {},
): Promise<Running> {
  const file = await manifestsFile(typeof initial === 'string' ? [] : initial);
  if (typeof initial === 'string') await file.writeText(initial);
  cleanups.push(() => file.remove());
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  const source = new FileSource({
    path: file.path,
    logger,
    pollIntervalMs: 50,
    debounceMs: 10,
    ...opts,
  });
  const daemon = new Daemon(
    { ...DEFAULT_DAEMON_CONFIG, metricsAddress: { host: '127.0.0.1', port: 0 } },
    { source, logger, defaultMetrics: false },
  );
  const { metrics } = await daemon.start();
  cleanups.push(async () => {
    daemon.forceClose();
    await daemon.shutdown();
  });
  await daemon.settled();
  return { daemon, source, file, logs, metricsUrl: `http://127.0.0.1:${metrics?.port}` };
}

/** One round trip through the proxy: the backend's greeting line. */
function roundTrip(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: VIP, port: 8080 });
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (x: string) => {
      buf += x;
      if (buf.includes('\n')) {
        s.destroy();
        resolve(buf.trim());
      }
    });
    s.on('error', reject);
  });
}

const readyz = async (r: Running): Promise<number> =>
  (await fetch(`${r.metricsUrl}/readyz`)).status;

describe('manifests file limits', () => {
  it('rejects a 20 MB pathological file written over the watched file, and keeps serving', async () => {
    const b = await startTcpBackend(EP, 9000, { name: 'ep' });
    cleanups.push(() => b.close());
    const r = await start(objects);
    expect(await roundTrip()).toBe('ep');
    await r.file.writeText(garbage(20_000_000));
    await waitFor('edit rejected', () => r.source.stats.rejectedUpdates >= 1);
    expect(await roundTrip()).toBe('ep');
    expect(await readyz(r)).toBe(200);
    const line = r.logs.find((l) => String(l.msg).includes('rejected'));
    expect(String(line?.err)).toMatch(/--max-manifests-bytes/);
    // Watch and poll both saw the edit: still one log line and one count.
    await new Promise((res) => setTimeout(res, 500));
    expect(r.source.stats.rejectedUpdates).toBe(1);
    expect(r.logs.filter((l) => String(l.msg).includes('rejected'))).toHaveLength(1);
    const metrics = await (await fetch(`${r.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /kube_lc_proxy_rejected_updates_total\{source="file",kind="file"\} 1\n/,
    );
  });

  it('parses a costly file beside the data path and rejects it at the memory or time limit', async () => {
    const b = await startTcpBackend(EP, 9000, { name: 'ep' });
    cleanups.push(() => b.close());
    // The size limit raised above the file: the worker's limits must stop it.
    const r = await start(objects, {
      maxBytes: 32 * 1024 * 1024,
      limits: { heapMb: 64, deadlineMs: 10_000 },
    });
    await r.file.writeText(garbage(1_500_000));
    // Round trips go on while the worker parses; the event loop is not blocked.
    let trips = 0;
    while (r.source.stats.rejectedUpdates === 0) {
      expect(await roundTrip()).toBe('ep');
      trips++;
      await new Promise((res) => setTimeout(res, 10));
    }
    expect(trips).toBeGreaterThan(1);
    const line = r.logs.find((l) => String(l.msg).includes('rejected'));
    expect(String(line?.err)).toMatch(/MB of memory|longer than/);
    expect(await roundTrip()).toBe('ep');
  });

  it('ignores an empty file (being written) until it has content', async () => {
    const b = await startTcpBackend(EP, 9000, { name: 'ep' });
    cleanups.push(() => b.close());
    const r = await start(objects);
    await r.file.writeText('');
    await waitFor('empty file seen', () => r.source.stats.emptyReads >= 1);
    expect(await roundTrip()).toBe('ep');
    expect(await readyz(r)).toBe(200);
    expect(r.source.stats.rejectedUpdates).toBe(0);
    expect(r.logs.filter((l) => String(l.msg).includes('empty'))).toHaveLength(1);
    // Content arrives: applied (here, the Service is gone).
    const applies = r.source.stats.applies;
    await r.file.writeText('# nothing served\n');
    await waitFor('content applied', () => r.source.stats.applies > applies);
    await r.daemon.settled();
    await expect(roundTrip()).rejects.toThrow();
  });

  it('starts not ready on an empty file, and ready once it has content', async () => {
    const b = await startTcpBackend(EP, 9000, { name: 'ep' });
    cleanups.push(() => b.close());
    const r = await start('');
    expect(await readyz(r)).toBe(503);
    await r.file.write(objects);
    await waitFor('ready', async () => (await readyz(r)) === 200);
    expect(await roundTrip()).toBe('ep');
  });

  it('logs and counts a bad edit once, though the watch and the poll both see it', async () => {
    const r = await start(objects);
    await r.file.writeText('kind: Service\nmetadata: {name: [\n');
    await waitFor('edit rejected', () => r.source.stats.rejectedUpdates >= 1);
    await new Promise((res) => setTimeout(res, 500));
    expect(r.source.stats.rejectedUpdates).toBe(1);
    expect(r.logs.filter((l) => String(l.msg).includes('rejected'))).toHaveLength(1);
  });
});
