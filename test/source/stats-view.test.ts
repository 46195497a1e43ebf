import { describe, expect, it } from 'vitest';
import { Daemon, DEFAULT_DAEMON_CONFIG } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import { newK8sSourceStats, type K8sSourceStats } from '../../src/source/k8s/stats.js';
import type { Source, SourceStats } from '../../src/source/types.js';

// The metrics read a source's counters through Source.statsView, typed by the source's kind.
// These sources count nothing themselves: the test sets the figures the metrics must show.

function source(kind: 'file' | 'k8s', view: () => SourceStats | undefined): Source {
  return { kind, start: async () => {}, stop: async () => {}, statsView: view };
}

/** The daemon's metrics text, for a daemon built (not started) on `src`. */
async function metricsOf(src: Source): Promise<string> {
  const daemon = new Daemon(
    { ...DEFAULT_DAEMON_CONFIG, metricsAddress: undefined },
    { source: src, logger: silentLogger(), defaultMetrics: false },
  );
  return daemon.metrics.registry.metrics();
}

describe('source counters in the metrics (Source.statsView)', () => {
  it('shows the k8s source counters it reads at scrape time', async () => {
    const loaded: { stats?: K8sSourceStats } = {};
    const src = source('k8s', () =>
      loaded.stats === undefined ? undefined : { kind: 'k8s', k8s: loaded.stats },
    );
    // Before the client library is loaded there are no counters, and no k8s series.
    expect(await metricsOf(src)).not.toMatch(/kube_lc_proxy_k8s_requests_total\{/);
    const stats = (loaded.stats = newK8sSourceStats());
    stats.services.requests.list = 3;
    stats.endpointslices.watchRestarts.expired = 2;
    stats.node.requests = 5;
    stats.node.errors = 1;
    const text = await metricsOf(src);
    expect(text).toMatch(/kube_lc_proxy_k8s_requests_total\{resource="services",verb="list"\} 3\n/);
    expect(text).toMatch(
      /kube_lc_proxy_k8s_watch_restarts_total\{resource="endpointslices",reason="expired"\} 2\n/,
    );
    expect(text).toMatch(/kube_lc_proxy_k8s_node_reads_total\{result="ok"\} 4\n/);
  });

  it('shows the file source rejected edits, and nothing of a source without counters', async () => {
    const file = { applies: 1, rejectedUpdates: 7, emptyReads: 0 };
    const text = await metricsOf(source('file', () => ({ kind: 'file', file })));
    expect(text).toMatch(/kube_lc_proxy_rejected_updates_total\{source="file",kind="file"\} 7\n/);
    expect(text).not.toMatch(/kube_lc_proxy_k8s_requests_total\{/);
    const bare: Source = { kind: 'file', start: async () => {}, stop: async () => {} };
    expect(await metricsOf(bare)).not.toMatch(/kube_lc_proxy_rejected_updates_total\{/);
  });
});
