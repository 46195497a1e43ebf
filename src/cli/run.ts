import { Daemon } from '../daemon/daemon.js';
import { KubeLcProxyError, describe } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { FileSource } from '../source/file.js';
import type { Source, SourceSink, SourceStats } from '../source/types.js';
import type { RunConfig } from './config.js';
import { raiseFileLimit } from './fd-limit.js';
import type { EarlyAdoption } from '../proxy/early-bind.js';
import { readPeerSecret } from '../cluster/secret.js';
import type { KubeConfig } from '@kubernetes/client-node';

async function createSource(
  config: RunConfig,
  logger: Logger,
  kubeConfig: KubeConfig | undefined,
): Promise<Source> {
  if (config.source.kind === 'file')
    return new FileSource({ path: config.source.path, logger, maxBytes: config.maxManifestsBytes });
  return new DeferredK8sSource(async () => {
    const { K8sSource } = await import('../source/k8s.js');
    return new K8sSource({
      logger,
      kubeconfig: config.kubeconfig,
      ...(kubeConfig !== undefined ? { kubeConfig } : {}),
      nodeName: config.daemon.nodeName,
      allServices: config.allServices,
    });
  });
}

/**
 * The k8s source, its client library loaded only when it starts. Loading
 * @kubernetes/client-node takes most of a second; the daemon binds the listener ports adopted
 * from the rules in place before it starts the source, so after a stop and start clients are
 * refused only for the time Node.js itself takes to start.
 */
class DeferredK8sSource implements Source {
  readonly kind = 'k8s' as const;
  readonly #load: () => Promise<Source>;
  #inner: Source | undefined;

  constructor(load: () => Promise<Source>) {
    this.#load = load;
  }

  /** The source's counters once it has started (metrics read them at scrape time). */
  statsView(): SourceStats | undefined {
    return this.#inner?.statsView?.();
  }

  async start(sink: SourceSink): Promise<void> {
    this.#inner ??= await this.#load();
    await this.#inner.start(sink);
  }

  async stop(): Promise<void> {
    await this.#inner?.stop();
  }
}

/**
 * `kube-lc-proxy run`: starts the daemon and handles signals. Resolves with the exit code:
 * 0 after a graceful stop, 1 when starting failed (bad manifests file, address in use...).
 *
 * Signals: SIGTERM or SIGINT stops accepting and waits up to the shutdown grace for open
 * connections; a second one closes them at once. SIGHUP re-reads a manifests file. SIGUSR1 and
 * SIGUSR2 are logged and ignored (Node.js would open its inspector on SIGUSR1).
 */
export async function run(config: RunConfig, prebound?: EarlyAdoption): Promise<number> {
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting');
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting');
    process.exit(70);
  });
  await raiseFileLimit(logger);
  let daemon: Daemon;
  try {
    const c = config.cluster;
    const cluster =
      c === undefined
        ? undefined
        : {
            node: c.node,
            peers: c.peers,
            intervalMs: c.intervalMs,
            secret: await readPeerSecret(c.secretFile),
            lease: c.lease,
          };
    // The Lease of the cluster view and the informers share one API client configuration.
    let kubeConfig: KubeConfig | undefined;
    if (c?.lease !== undefined) {
      const { loadKubeConfig } = await import('../source/k8s/config.js');
      kubeConfig = loadKubeConfig({ kubeconfig: config.kubeconfig }).kc;
    }
    const source = await createSource(config, logger, kubeConfig);
    daemon = new Daemon(
      { ...config.daemon, cluster },
      {
        source,
        logger,
        kubeConfig,
        ...(prebound !== undefined ? { prebound } : {}),
      },
    );
    await daemon.start();
  } catch (err) {
    const message = err instanceof KubeLcProxyError ? err.message : describe(err);
    logger.fatal({ err: message, code: (err as KubeLcProxyError).code }, 'cannot start');
    process.stderr.write(`kube-lc-proxy: ${message}\n`);
    return 1;
  }
  logger.info(
    {
      source: config.source.kind,
      intercept: config.daemon.intercept,
      pid: process.pid,
      ...(config.cluster !== undefined
        ? { clusterNode: config.cluster.node, clusterPeers: config.cluster.peers.length }
        : {}),
    },
    'kube-lc-proxy running',
  );
  return new Promise<number>((resolve) => {
    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: closing every connection now');
        daemon.forceClose();
        return;
      }
      logger.info({ signal }, 'shutting down');
      void daemon.shutdown().then(() => resolve(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // Node.js opens its inspector on SIGUSR1 unless something listens for it: not on a proxy.
    for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) {
      process.on(signal, () => logger.info({ signal }, 'signal ignored'));
    }
    process.on('SIGHUP', () => {
      if (daemon.source instanceof FileSource) {
        logger.info('SIGHUP: reading the manifests file again');
        void daemon.source.reload();
      } else {
        logger.info('SIGHUP ignored: the k8s source follows the API server by itself');
      }
    });
  });
}
