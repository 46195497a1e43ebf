import { spawn, type ChildProcess } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/** The built CLI, next to dist/: the demo's nodes run what a user would run. */
const CLI = fileURLToPath(new URL('../../bin/kube-lc-proxy.js', import.meta.url));

/** One backend as the demo's manifests list it. */
export interface ManifestEndpoint {
  readonly address: string;
  readonly state: 'ready' | 'terminating';
}

/**
 * The manifests of one node: the Service `default/demo` port `grpc` with this node's ClusterIP
 * (each "node" has its own address on 127.0.100.0/24, as every node of a cluster has the same
 * ClusterIP locally), and one EndpointSlice. A Service port is the same across nodes by its
 * name, namespace/name:port, never by the address. Pure.
 */
export function nodeManifests(
  clusterIP: string,
  port: number,
  endpoints: readonly ManifestEndpoint[],
): string {
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'demo', namespace: 'default' },
    spec: { clusterIP, ports: [{ name: 'grpc', port, protocol: 'TCP' }] },
  };
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'demo-1',
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'demo' },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      conditions: {
        ready: e.state === 'ready',
        serving: true,
        terminating: e.state === 'terminating',
      },
    })),
  };
  return `${stringify(svc)}---\n${stringify(slice)}`;
}

/** The cluster-view flags of a node: its name, its peers' metrics addresses, the secret. */
export interface PeerFlags {
  readonly nodeName: string;
  readonly peers: readonly string[];
  readonly secretFile: string;
}

/** One node's process: its name, addresses and manifests file, and the view's flags if on. */
export interface ProxyNodeOptions {
  readonly name: string;
  /** The node's ClusterIP for the Service; its metrics listen on the same address. */
  readonly address: string;
  readonly metricsPort: number;
  /** Its manifests file (rewritten on every change). */
  readonly file: string;
  readonly peers?: PeerFlags | undefined;
}

/** `/debug/state` as far as the demo reads it. */
interface DebugState {
  readonly servicePorts: readonly {
    readonly servicePort: string;
    readonly endpoints: readonly { readonly endpoint: string; readonly state: string }[];
  }[];
}

const LOG_LINES = 20;

/**
 * One demo "node": `kube-lc-proxy run` as its own process, file source, intercept none, max
 * connection age off (what moves connections in the demo is the rebalance and the leaving
 * endpoint). The demo owns the process: `stop` ends it, and the demo kills what is left if it is
 * interrupted.
 */
export class ProxyNode {
  readonly name: string;
  readonly metrics: string;
  readonly #o: ProxyNodeOptions;
  readonly #child: ChildProcess;
  readonly #log: string[] = [];
  #exited: number | null | undefined;

  private constructor(o: ProxyNodeOptions, child: ChildProcess) {
    this.name = o.name;
    this.metrics = `${o.address}:${o.metricsPort}`;
    this.#o = o;
    this.#child = child;
    const keep = (d: Buffer): void => {
      this.#log.push(...String(d).trimEnd().split('\n'));
      this.#log.splice(0, Math.max(0, this.#log.length - LOG_LINES));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code) => (this.#exited = code));
  }

  /** Writes the manifests and starts the process; resolves once it reports ready. */
  static async start(o: ProxyNodeOptions, manifests: string): Promise<ProxyNode> {
    await writeFile(o.file, manifests);
    const args = [
      CLI,
      'run',
      '--source',
      `file:${o.file}`,
      '--intercept',
      'none',
      '--metrics-address',
      `${o.address}:${o.metricsPort}`,
      '--log-level',
      'warn',
      '--max-connection-age',
      '0',
      '--shutdown-grace',
      '1s',
      // Twelve "nodes" share this machine's cores: one worker thread each is plenty.
      '--workers',
      '1',
    ];
    if (o.peers !== undefined) {
      args.push('--node-name', o.peers.nodeName, '--peers', o.peers.peers.join(','));
      args.push('--peer-secret-file', o.peers.secretFile);
    }
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const node = new ProxyNode(o, child);
    await node.#until(async () => (await node.#get('/readyz')).ok, 60_000, 'ready');
    return node;
  }

  /**
   * Rewrites the manifests (atomically), asks the proxy to re-read them (SIGHUP), and resolves
   * once its /debug/state lists exactly `endpoints`.
   */
  async apply(manifests: string, endpoints: readonly ManifestEndpoint[]): Promise<void> {
    await writeFile(`${this.#o.file}.new`, manifests);
    await rename(`${this.#o.file}.new`, this.#o.file);
    this.#child.kill('SIGHUP');
    const want = endpoints.map((e) => `${e.address} ${e.state}`).sort();
    await this.#until(
      async () => {
        const state = (await (await this.#get('/debug/state')).json()) as DebugState;
        const port = state.servicePorts.find((p) => p.servicePort === 'default/demo:grpc');
        const got = (port?.endpoints ?? [])
          .filter((e) => e.state !== 'removed')
          .map((e) => `${e.endpoint.slice(0, e.endpoint.lastIndexOf(':'))} ${e.state}`)
          .sort();
        return JSON.stringify(got) === JSON.stringify(want);
      },
      30_000,
      'the new endpoints',
    );
  }

  /** Drains started so far by reason (`kube_lc_proxy_drains_started_total`). */
  async drains(): Promise<Record<string, number>> {
    const text = await (await this.#get('/metrics')).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(
      /^kube_lc_proxy_drains_started_total\{[^}]*reason="([^"]+)"[^}]*\} (\d+)/gm,
    )) {
      out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
    }
    return out;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  async stop(): Promise<void> {
    if (this.#exited !== undefined) return;
    const exited = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the process now (the demo was interrupted). */
  kill(): void {
    if (this.#exited === undefined) this.#child.kill('SIGKILL');
  }

  #get(path: string): Promise<Response> {
    return fetch(`http://${this.metrics}${path}`, { signal: AbortSignal.timeout(3_000) });
  }

  async #until(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exited !== undefined) {
        throw new Error(
          `${this.name} exited (code ${this.#exited}) before ${what}:\n${this.#log.join('\n')}`,
        );
      }
      try {
        if (await ok()) return;
      } catch {
        // Not listening yet, or busy: try again until the deadline.
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not report ${what} within ${timeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Whether this build's `run` has the cluster-view flags (`--peers`, `--peer-secret-file`). */
export async function hasClusterView(): Promise<boolean> {
  const child = spawn(process.execPath, [CLI, 'run', '--help'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  await new Promise((r) => child.once('exit', r));
  return out.includes('--peers') && out.includes('--peer-secret-file');
}
