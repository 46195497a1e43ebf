import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where client-node's `loadFromCluster(pathPrefix)` looks, under a prefix. */
export const SERVICEACCOUNT_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';

/** What a kubeconfig for the stand-in needs to know. */
export interface KubeconfigTarget {
  readonly url: string;
  readonly ca: string | undefined;
  readonly token: string | undefined;
}

/**
 * Writes a kubeconfig (JSON, which is valid YAML) for `target` to `file`. For plain http it
 * sets `insecure-skip-tls-verify: true`, without which client-node 2.x refuses http servers;
 * for https it embeds the CA. The token, if any, becomes `Authorization: Bearer`.
 */
export async function writeKubeconfig(target: KubeconfigTarget, file: string): Promise<string> {
  const cluster: Record<string, unknown> = { server: target.url };
  if (target.ca !== undefined) {
    cluster['certificate-authority-data'] = Buffer.from(target.ca).toString('base64');
  } else {
    cluster['insecure-skip-tls-verify'] = true;
  }
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'stand-in',
    clusters: [{ name: 'stand-in', cluster }],
    users: [{ name: 'stand-in', user: target.token !== undefined ? { token: target.token } : {} }],
    contexts: [
      {
        name: 'stand-in',
        context: { cluster: 'stand-in', user: 'stand-in', namespace: 'default' },
      },
    ],
  };
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** The result of `writeInClusterRoot`: pass `pathPrefix` to `loadFromCluster` and set `env`. */
export interface InClusterRoot {
  readonly pathPrefix: string;
  readonly env: { KUBERNETES_SERVICE_HOST: string; KUBERNETES_SERVICE_PORT: string };
}

/**
 * Lays out `<root>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}` as a
 * pod sees them. Needs an HTTPS stand-in: `loadFromCluster` speaks https on every port but
 * 80, 8080 and 8001.
 */
export async function writeInClusterRoot(
  target: KubeconfigTarget & { host: string; port: number },
  root: string,
  namespace = 'kube-system',
): Promise<InClusterRoot> {
  if (target.ca === undefined) throw new Error('in-cluster config needs the stand-in in TLS mode');
  const dir = join(root, SERVICEACCOUNT_DIR);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'token'), target.token ?? '', { mode: 0o600 });
  await writeFile(join(dir, 'ca.crt'), target.ca);
  await writeFile(join(dir, 'namespace'), namespace);
  return {
    pathPrefix: root,
    env: { KUBERNETES_SERVICE_HOST: target.host, KUBERNETES_SERVICE_PORT: String(target.port) },
  };
}
