/**
 * The real kubectl changes the stand-in cluster; the real CLI (`kube-lc-proxy run --source k8s
 * --intercept none`) follows: a new endpoint takes connections, a terminating endpoint's h2c
 * connections get GOAWAY, removing the service-proxy-name label hands the Service back.
 * Addresses: 127.0.12.0/24 (ClusterIP 127.0.12.50:8080, endpoints 127.0.12.11-13:9000).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DebugState } from '../../src/metrics/state.js';
import { FakeApiServer } from '../support/apiserver/index.js';
import { KUBECTL, kubectl, kubectlOk, type KubectlEnv } from '../support/kubectl.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

const CLUSTER_IP = '127.0.12.50';
const LABEL = 'service.kubernetes.io/service-proxy-name';

function manifest(endpoints: readonly string[]): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: echo12
  namespace: default
  labels: { ${LABEL}: kube-lc-proxy }
spec:
  clusterIP: ${CLUSTER_IP}
  ports: [{ name: grpc, port: 8080, targetPort: 9000 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo12-a
  namespace: default
  labels: { kubernetes.io/service-name: echo12, ${LABEL}: kube-lc-proxy }
addressType: IPv4
ports: [{ name: grpc, port: 9000, protocol: TCP }]
endpoints:
${endpoints.map((a) => `  - addresses: [${a}]\n    conditions: { ready: true, serving: true, terminating: false }`).join('\n')}
`;
}

/** An h2c backend answering every request with its address. */
async function h2Backend(host: string): Promise<http2.Http2Server> {
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ':status': 200 });
    stream.end(`${host}:9000`);
  });
  server.on('session', (s) => s.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(9000, host, resolve));
  return server;
}

interface Client {
  readonly session: http2.ClientHttp2Session;
  readonly backend: string;
  goaway: number | undefined;
}

/** An h2c session through the proxy; one request tells which backend it landed on. */
async function h2Client(): Promise<Client> {
  const session = http2.connect(`http://${CLUSTER_IP}:8080`);
  session.on('error', () => {});
  const backend = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
    req.end();
  });
  const client: Client = { session, backend, goaway: undefined };
  session.on('goaway', (code) => (client.goaway = code));
  return client;
}

/** How long each wait took, from the kubectl command's exit: reported, never asserted. */
const waited: string[] = [];

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const start = Date.now();
  const deadline = start + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) {
      waited.push(`${what}: ${Date.now() - start} ms`);
      return v;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const TITLE =
  KUBECTL === undefined
    ? 'SKIPPED: kubectl not found on PATH (install kubectl v1.32+, see .ci/run): kubectl drives the stand-in'
    : 'kubectl drives the stand-in; the proxy follows';

describe.skipIf(KUBECTL === undefined)(TITLE, () => {
  let api: FakeApiServer;
  let dir: string;
  let env: KubectlEnv;
  let proxy: ProxyProcess;
  let backends: http2.Http2Server[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    api = await FakeApiServer.start();
    dir = await mkdtemp(join(tmpdir(), 'klp-kubectl-'));
    env = {
      kubeconfig: await api.writeKubeconfig(join(dir, 'kc.yaml')),
      cacheDir: join(dir, 'cache'),
    };
    backends = await Promise.all(['127.0.12.11', '127.0.12.12', '127.0.12.13'].map(h2Backend));
    proxy = await startProxyProcess([
      '--source',
      'k8s',
      '--kubeconfig',
      env.kubeconfig,
      '--intercept',
      'none',
    ]);
  });

  afterAll(async () => {
    console.log(`kubectl suite, proxy followed after: ${waited.join('; ')}`);
    for (const c of clients) c.session.destroy();
    await proxy?.stop();
    await Promise.all(backends.map((b) => new Promise((r) => b.close(r))));
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const state = async (): Promise<DebugState> =>
    (await (await fetch(`${proxy.metricsUrl}/debug/state`)).json()) as DebugState;
  const endpointsOf = async (): Promise<Record<string, string> | undefined> => {
    const sp = (await state()).servicePorts.find((s) => s.servicePort === 'default/echo12:grpc');
    return sp && Object.fromEntries(sp.endpoints.map((e) => [e.endpoint, e.state]));
  };
  const tally = (cs: readonly Client[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of cs) out[c.backend] = (out[c.backend] ?? 0) + 1;
    return out;
  };

  it('apply: the proxy takes the labelled Service; a new endpoint from a second apply takes the next connections', async () => {
    const created = await kubectlOk(env, ['apply', '-f', '-'], {
      stdin: manifest(['127.0.12.11', '127.0.12.12']),
    });
    expect(created).toContain('service/echo12 created');
    await until('two ready endpoints', async () => {
      const eps = await endpointsOf();
      return eps?.['127.0.12.11:9000'] === 'ready' && eps['127.0.12.12:9000'] === 'ready'
        ? eps
        : undefined;
    });
    const first: Client[] = [];
    for (let i = 0; i < 4; i++) first.push(await h2Client());
    clients.push(...first);
    expect(tally(first)).toEqual({ '127.0.12.11:9000': 2, '127.0.12.12:9000': 2 });

    const configured = await kubectlOk(env, ['apply', '-f', '-'], {
      stdin: manifest(['127.0.12.11', '127.0.12.12', '127.0.12.13']),
    });
    expect(configured).toContain('endpointslice.discovery.k8s.io/echo12-a configured');
    expect(configured).toContain('service/echo12 unchanged');
    await until('the third endpoint', async () =>
      (await endpointsOf())?.['127.0.12.13:9000'] === 'ready' ? true : undefined,
    );
    const next: Client[] = [];
    for (let i = 0; i < 2; i++) next.push(await h2Client());
    clients.push(...next);
    expect(tally(next)).toEqual({ '127.0.12.13:9000': 2 });

    const listed = await kubectlOk(env, ['get', 'svc,endpointslices', '-A']);
    expect(listed).toMatch(
      /default\s+service\/echo12\s+ClusterIP\s+127\.0\.12\.50\s+<none>\s+8080\/TCP/,
    );
    expect(listed).toMatch(
      /endpointslice\.discovery\.k8s\.io\/echo12-a\s+IPv4\s+9000\s+127\.0\.12\.11,127\.0\.12\.12,127\.0\.12\.13/,
    );
  });

  it('patch: a terminating endpoint has its h2c connections drained with GOAWAY (NO_ERROR); the others keep theirs', async () => {
    const patched = await kubectlOk(env, [
      'patch',
      'endpointslice',
      'echo12-a',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/endpoints/0/conditions","value":{"ready":false,"serving":true,"terminating":true}}]',
    ]);
    expect(patched).toContain('patched');
    const onTerminating = clients.filter((c) => c.backend === '127.0.12.11:9000');
    expect(onTerminating.length).toBe(2);
    await until('GOAWAY on the terminating endpoint’s connections', async () =>
      onTerminating.every((c) => c.goaway !== undefined) ? true : undefined,
    );
    expect(onTerminating.map((c) => c.goaway)).toEqual([
      http2.constants.NGHTTP2_NO_ERROR,
      http2.constants.NGHTTP2_NO_ERROR,
    ]);
    expect((await endpointsOf())?.['127.0.12.11:9000']).toBe('terminating');
    expect(
      clients.filter((c) => c.backend !== '127.0.12.11:9000').every((c) => c.goaway === undefined),
    ).toBe(true);
  });

  it('label removed: the Service is handed back (listener closed); label set again: taken back; delete: gone', async () => {
    const objects = ['svc/echo12', 'endpointslice/echo12-a'];
    expect(await kubectlOk(env, ['label', ...objects, `${LABEL}-`])).toContain(
      'service/echo12 unlabeled',
    );
    await until('the Service to leave the proxy', async () =>
      (await endpointsOf()) === undefined ? true : undefined,
    );
    const dial = (): Promise<string> =>
      new Promise<string>((resolve) => {
        const sock = connect(8080, CLUSTER_IP);
        sock.on('connect', () => {
          sock.destroy();
          resolve('connected');
        });
        sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
    // The listener closes right after the table drops the Service: wait for the refusal.
    expect(
      await until('the listener on the ClusterIP to close', async () =>
        (await dial()) === 'ECONNREFUSED' ? 'ECONNREFUSED' : undefined,
      ),
    ).toBe('ECONNREFUSED');

    expect(await kubectlOk(env, ['label', ...objects, `${LABEL}=kube-lc-proxy`])).toContain(
      'service/echo12 labeled',
    );
    await until('the Service to come back', async () =>
      (await endpointsOf()) !== undefined ? true : undefined,
    );

    const deleted = await kubectlOk(env, ['delete', ...objects]);
    expect(deleted).toContain('service "echo12" deleted');
    await until('the Service to be gone', async () =>
      (await endpointsOf()) === undefined ? true : undefined,
    );
    const missing = await kubectl(env, ['get', 'svc', 'echo12']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('Error from server (NotFound): services "echo12" not found');
  });

  it('get -w prints a change as it happens (watch in table form); edit applies through KUBE_EDITOR', async () => {
    await kubectlOk(env, ['apply', '-f', '-'], { stdin: manifest(['127.0.12.12']) });
    const watcher = spawn(KUBECTL!, ['get', 'svc', 'echo12', '-w', '--output-watch-events'], {
      env: { ...process.env, KUBECONFIG: env.kubeconfig, KUBECACHEDIR: env.cacheDir },
    });
    let out = '';
    watcher.stdout.on('data', (d) => (out += String(d)));
    try {
      await until('the initial row', async () => (out.includes('echo12') ? true : undefined));
      const editor = `sed -i -e 's/port: 8080/port: 8081/'`;
      const edited = await kubectl(env, ['edit', 'svc', 'echo12'], {
        extraEnv: { KUBE_EDITOR: editor },
      });
      expect(edited.stdout).toContain('service/echo12 edited');
      await until('the MODIFIED row', async () =>
        /MODIFIED\s+echo12\s+ClusterIP.*8081\/TCP/.test(out) ? true : undefined,
      );
    } finally {
      watcher.kill();
    }
    await kubectlOk(env, ['delete', 'svc/echo12', 'endpointslice/echo12-a']);
  });
});
