/**
 * K8sSource configuration paths (kubeconfig file, in-cluster HTTPS + bearer token, errors) and
 * the node zone read, against the stand-in API server.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ErrorCodes, KubeApiError } from '../../src/errors.js';
import { K8sSource, loadKubeConfig } from '../../src/source/k8s.js';
import { FakeApiServer, SERVICEACCOUNT_DIR } from '../support/apiserver/index.js';
import { node, service } from './fixtures.js';
import { waitFor } from './helpers.js';
import { FAST, memoryLogger, RecordingSink, startSource } from './source-harness.js';

const ENV_KEYS = ['KUBECONFIG', 'HOME', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'];

let api: FakeApiServer | undefined;
let source: K8sSource | undefined;
let dir: string;
let savedEnv: Record<string, string | undefined>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'klp-k8s-config-'));
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
  await api?.close();
  api = undefined;
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(dir, { recursive: true, force: true });
});

function newSource(opts: ConstructorParameters<typeof K8sSource>[0]): K8sSource {
  source = new K8sSource(opts);
  return source;
}

describe('K8sSource: configuration', () => {
  it('in-cluster: HTTPS with the service-account CA and bearer token under a path prefix', async () => {
    api = await FakeApiServer.start({ tls: true, token: 'sa-token' });
    api.upsert('services', service('web'));
    api.upsert('nodes', node('node-1', 'zone-a'));
    const root = await api.writeInClusterRoot(dir);
    Object.assign(process.env, root.env);
    delete process.env['KUBECONFIG'];
    const { logger } = memoryLogger();
    const sink = new RecordingSink();
    await newSource({
      logger,
      inClusterPathPrefix: root.pathPrefix,
      nodeName: 'node-1',
      ...FAST,
    }).start(sink);
    await waitFor(() => sink.synced && sink.zone === 'zone-a' && api!.watchCount() === 2);
    expect(sink.services.has('default/web')).toBe(true);
    expect(api.requests.length).toBe(5); // 2 lists, 2 watches, 1 node read
    expect(api.requests.every((r) => r.authorization === 'Bearer sa-token')).toBe(true);
    expect(api.requests.every((r) => r.status === 0 || r.status === 200)).toBe(true);
  });

  it('kubeconfig file (HTTPS, embedded CA, token) given as the kubeconfig option', async () => {
    api = await FakeApiServer.start({ tls: true, token: 't0ken' });
    api.upsert('services', service('web'));
    const file = await api.writeKubeconfig(join(dir, 'kubeconfig'));
    const loaded = loadKubeConfig({ kubeconfig: file });
    expect(loaded.source).toBe('kubeconfig');
    expect(loaded.server).toBe(api.url);
    const sink = new RecordingSink();
    await newSource({ logger: memoryLogger().logger, kubeconfig: file, ...FAST }).start(sink);
    await waitFor(() => sink.synced);
    expect(sink.services.has('default/web')).toBe(true);
  });

  it('a wrong token: 401 is an http-error restart, never a crash, never synced', async () => {
    api = await FakeApiServer.start({ token: 'right' });
    const file = join(dir, 'kubeconfig');
    await api.writeKubeconfig(file);
    await writeFile(file, (await readFile(file, 'utf8')).replace('right', 'wrong'));
    const sink = new RecordingSink();
    const s = newSource({ logger: memoryLogger().logger, kubeconfig: file, ...FAST });
    await s.start(sink);
    await waitFor(() => s.stats.services.watchRestarts['http-error'] >= 2);
    expect(sink.synced).toBe(false);
  });

  it.each([
    ['a missing file', async () => join(dir, 'nope'), /--kubeconfig: file not found/],
    [
      'unparsable YAML',
      async () => write('kubeconfig', ': : :\n\t- ['),
      /--kubeconfig: cannot load/,
    ],
    [
      'plain http without insecure-skip-tls-verify',
      async () =>
        write(
          'kubeconfig',
          JSON.stringify({
            'current-context': 'c',
            clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:1' } }],
            users: [{ name: 'u', user: {} }],
            contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
          }),
        ),
      /refuses plain http/,
    ],
    [
      'no current context',
      async () => write('kubeconfig', JSON.stringify({ clusters: [], users: [], contexts: [] })),
      /--kubeconfig: no cluster/,
    ],
  ])('kubeconfig errors are ConfigError naming --kubeconfig: %s', async (_what, make, message) => {
    const file = await make();
    const s = newSource({ logger: memoryLogger().logger, kubeconfig: file });
    const err = await s.start(new RecordingSink()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe(ErrorCodes.CONFIG);
    expect(String((err as Error).message)).toMatch(message);
  });

  it('in-cluster without ca.crt: KubeApiError', async () => {
    await write(join(SERVICEACCOUNT_DIR, 'token'), 'x');
    Object.assign(process.env, {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
    });
    expect(() => loadKubeConfig({ inClusterPathPrefix: dir })).toThrow(KubeApiError);
  });

  it('nothing configured at all: ConfigError that says to pass --kubeconfig', async () => {
    delete process.env['KUBECONFIG'];
    delete process.env['KUBERNETES_SERVICE_HOST'];
    process.env['HOME'] = dir;
    expect(() => loadKubeConfig({ inClusterPathPrefix: dir })).toThrow(/pass --kubeconfig/);
  });
});

describe('K8sSource: node zone', () => {
  it('reads the Node with get only, then refreshes: a zone change reaches the sink', async () => {
    api = await FakeApiServer.start();
    api.upsert('nodes', node('node-1', 'zone-a'));
    const { sink, source: s } = await startSource(api, { nodeName: 'node-1', nodeRefreshMs: 100 });
    source = s;
    await waitFor(() => sink.zone === 'zone-a');
    api.upsert('nodes', node('node-1', 'zone-b'));
    await waitFor(() => sink.zone === 'zone-b');
    const nodeReqs = api.requests.filter((r) => r.resource === 'nodes');
    expect(new Set(nodeReqs.map((r) => `${r.verb} ${r.path}`))).toEqual(
      new Set(['get /api/v1/nodes/node-1']),
    );
    // Unchanged zones are not repeated to the sink.
    expect(sink.calls.filter((c) => c.startsWith('setNodeZone'))).toEqual([
      'setNodeZone zone-a',
      'setNodeZone zone-b',
    ]);
    expect(s.stats.node.zone).toBe('zone-b');
  });

  it('a missing Node is retried with back-off until it appears; no zone label gives undefined', async () => {
    api = await FakeApiServer.start();
    const { sink, source: s, lines } = await startSource(api, { nodeName: 'node-1' });
    source = s;
    await waitFor(() => s.stats.node.errors >= 2);
    expect(sink.calls.filter((c) => c.startsWith('setNodeZone'))).toEqual([]);
    api.upsert('nodes', node('node-1'));
    await waitFor(() => sink.calls.includes('setNodeZone undefined'));
    expect(lines.some((l) => l.level === 40 && l['node'] === 'node-1')).toBe(true);
  });
});

async function write(rel: string, content: string): Promise<string> {
  const file = join(dir, rel);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, content);
  return file;
}
