import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, describe, KubeApiError } from '../../errors.js';

/** Where the API client configuration came from. */
export type KubeConfigSource = 'kubeconfig' | 'in-cluster' | 'default';

/** How to find the API server. */
export interface KubeConfigOptions {
  /** A kubeconfig file (the CLI's `--kubeconfig`, or `$KUBECONFIG` passed through). */
  readonly kubeconfig?: string;
  /**
   * Prefix for the service-account files of the in-cluster config (tests lay out
   * `<prefix>/var/run/secrets/kubernetes.io/serviceaccount/`). Default ''.
   */
  readonly inClusterPathPrefix?: string;
}

/** A loaded configuration. */
export interface LoadedKubeConfig {
  readonly kc: KubeConfig;
  readonly source: KubeConfigSource;
  /** The API server URL, for logs. */
  readonly server: string;
}

const SERVICEACCOUNT = 'var/run/secrets/kubernetes.io/serviceaccount';

function serviceAccountFile(prefix: string, file: string): string {
  return prefix === '' ? `/${SERVICEACCOUNT}/${file}` : join(prefix, SERVICEACCOUNT, file);
}

function validate(kc: KubeConfig, source: KubeConfigSource, flag: string): LoadedKubeConfig {
  const fail = (msg: string): never => {
    if (source === 'in-cluster') throw new KubeApiError(`in-cluster config: ${msg}`);
    throw new ConfigError(flag, msg);
  };
  const cluster = kc.getCurrentCluster();
  if (!cluster) return fail(`no cluster for current context "${kc.getCurrentContext()}"`);
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    return fail(`cluster "${cluster.name}" has an invalid server URL "${cluster.server}"`);
  }
  if (url.protocol === 'http:' && !cluster.skipTLSVerify) {
    if (source === 'default' && cluster.server === 'http://localhost:8080') {
      return fail(
        'no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster; pass --kubeconfig',
      );
    }
    return fail(
      `cluster "${cluster.name}" uses ${cluster.server}: client-node refuses plain http unless insecure-skip-tls-verify is set`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(`cluster "${cluster.name}" has an unsupported server URL "${cluster.server}"`);
  }
  return { kc, source, server: cluster.server };
}

/**
 * Loads the API client configuration: the `kubeconfig` file if given; else the in-cluster
 * service account when `KUBERNETES_SERVICE_HOST`/`_PORT` are set and its token file exists;
 * else client-node's `loadFromDefault` ($KUBECONFIG, ~/.kube/config). Throws ConfigError
 * (naming `--kubeconfig` or `KUBECONFIG`) or KubeApiError (in-cluster) with the reason, never
 * a raw client-node error; the result always has a usable current cluster.
 */
export function loadKubeConfig(opts: KubeConfigOptions = {}): LoadedKubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') {
    if (!existsSync(opts.kubeconfig)) {
      throw new ConfigError('--kubeconfig', `file not found: ${opts.kubeconfig}`);
    }
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (err) {
      throw new ConfigError('--kubeconfig', `cannot load ${opts.kubeconfig}: ${describe(err)}`);
    }
    return validate(kc, 'kubeconfig', '--kubeconfig');
  }
  const prefix = opts.inClusterPathPrefix ?? '';
  const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
  if (host && port && existsSync(serviceAccountFile(prefix, 'token'))) {
    const ca = serviceAccountFile(prefix, 'ca.crt');
    if (!existsSync(ca)) throw new KubeApiError(`in-cluster config: ${ca} is missing`);
    try {
      kc.loadFromCluster(prefix);
    } catch (err) {
      throw new KubeApiError(`in-cluster config: ${describe(err)}`, { cause: err });
    }
    return validate(kc, 'in-cluster', 'in-cluster');
  }
  try {
    kc.loadFromDefault();
  } catch (err) {
    const where = process.env['KUBECONFIG'] ? ` ${process.env['KUBECONFIG']}` : '';
    throw new ConfigError('KUBECONFIG', `cannot load kubeconfig${where}: ${describe(err)}`);
  }
  return validate(kc, 'default', 'KUBECONFIG');
}
