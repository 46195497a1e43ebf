import { afterAll, beforeAll } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { startGrpcBackend, type GrpcBackend } from './grpc.js';
import { manifestsFile, type ManifestsFile } from './manifests.js';
import { endpointSlice, service } from './objects.js';
import { startProxyProcess, type ProxyProcess } from './proxy-process.js';

export interface GrpcFixtureOptions {
  /** ClusterIP of Service `default/echo` (port 8080, named grpc). */
  readonly vip: string;
  /** Backend addresses; each gets a grpc-js server on port 9000. */
  readonly ips: readonly string[];
  /** How many of `ips` are in the EndpointSlice at the start (default all). */
  readonly initialEndpoints?: number;
  /** Extra `run` flags (the source and intercept none are set). */
  readonly proxyArgs?: readonly string[];
  readonly serverOptions?: grpc.ServerOptions;
}

export interface GrpcFixture {
  readonly backends: GrpcBackend[];
  readonly file: ManifestsFile;
  readonly proxy: ProxyProcess;
  readonly target: string;
  /** Rewrites the EndpointSlice with the first `n` backends. */
  setEndpoints(n: number): Promise<void>;
}

/**
 * gRPC backends, a manifests file and a `kube-lc-proxy run` child process for one test file,
 * set up in beforeAll and torn down in afterAll. Returns an accessor for use inside tests.
 */
export function useGrpcFixture(o: GrpcFixtureOptions): () => GrpcFixture {
  let fixture: GrpcFixture | undefined;
  const backends: GrpcBackend[] = [];
  let file: ManifestsFile | undefined;
  let proxy: ProxyProcess | undefined;
  const svc = service('echo', { clusterIP: o.vip, ports: [{ name: 'grpc', port: 8080 }] });
  const objects = (n: number) => [svc, endpointSlice('echo-1', o.ips.slice(0, n))];

  beforeAll(async () => {
    backends.push(
      ...(await Promise.all(
        o.ips.map((ip) => startGrpcBackend(ip, 9000, undefined, o.serverOptions)),
      )),
    );
    file = await manifestsFile(objects(o.initialEndpoints ?? o.ips.length));
    proxy = await startProxyProcess([
      '--source',
      `file:${file.path}`,
      '--intercept',
      'none',
      ...(o.proxyArgs ?? []),
    ]);
    const f = file;
    fixture = {
      backends,
      file: f,
      proxy,
      target: `${o.vip}:8080`,
      setEndpoints: (n) => f.write(objects(n)),
    };
  });

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await file?.remove();
  });

  return () => {
    if (fixture === undefined) throw new Error('gRPC fixture used outside a test');
    return fixture;
  };
}
