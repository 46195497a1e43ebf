import { Daemon, DEFAULT_DAEMON_CONFIG, type DaemonConfig } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import { portStats, type PortStats } from '../../src/metrics/port-stats.js';
import { FileSource } from '../../src/source/file.js';
import { manifestsFile, type ManifestsFile } from './manifests.js';

export interface TestDaemon {
  readonly daemon: Daemon;
  readonly file: ManifestsFile;
  /** http://host:port of the metrics server. */
  readonly metricsUrl: string;
  /**
   * The figures of a Service port as metrics read them, node-wide (worker threads included:
   * their counters are brought in first).
   */
  portStats(servicePort: string): Promise<PortStats | undefined>;
  /** Rewrites the manifests file and waits until the daemon applied it. */
  edit(objects: readonly unknown[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Worker threads for the data path of test daemons: `KLP_TEST_WORKERS` (CI runs the suite once
 * without it and once with 2), else none (the data path on the test's own thread). A test that
 * needs one or the other sets `workers` itself.
 */
export const TEST_WORKERS = Number(process.env['KLP_TEST_WORKERS'] ?? 0);

/**
 * A daemon on a watched manifests file, intercept `none`, metrics on 127.0.0.1 port 0. The file
 * is polled every 50 ms so edits apply quickly.
 */
export async function startTestDaemon(
  objects: readonly unknown[],
  config: Partial<DaemonConfig> = {},
): Promise<TestDaemon> {
  const file = await manifestsFile(objects);
  const logger = silentLogger();
  const source = new FileSource({ path: file.path, logger, pollIntervalMs: 50, debounceMs: 10 });
  const daemon = new Daemon(
    {
      ...DEFAULT_DAEMON_CONFIG,
      metricsAddress: { host: '127.0.0.1', port: 0 },
      shutdownGraceMs: 1000,
      workers: TEST_WORKERS,
      ...config,
    },
    { source, logger, defaultMetrics: false, testSeams: true },
  );
  const { metrics } = await daemon.start();
  await daemon.settled();
  return {
    daemon,
    file,
    metricsUrl: metrics === undefined ? '' : `http://127.0.0.1:${metrics.port}`,
    async portStats(key) {
      await daemon.refreshStats();
      const p = daemon.proxier.get(key);
      return p === undefined ? undefined : portStats(p);
    },
    async edit(objs) {
      const before = source.stats.applies;
      await file.write(objs);
      const deadline = Date.now() + 5000;
      while (source.stats.applies === before) {
        if (Date.now() > deadline) throw new Error('edit not applied within 5 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      await daemon.settled();
    },
    async stop() {
      daemon.forceClose();
      await daemon.shutdown();
      await file.remove();
    },
  };
}
