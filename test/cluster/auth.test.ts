import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  signRequest,
  signResponse,
  verify,
} from '../../src/cluster/auth.js';
import { REPORT_PATH } from '../../src/cluster/handler.js';
import { parseReport } from '../../src/cluster/report.js';
import type { DebugState } from '../../src/metrics/state.js';
import { waitFor } from '../support/backends.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { endpointSlice, service } from '../support/objects.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

// Addresses of this file: 127.0.116.0/24.
const SECRET = 'a-secret-of-enough-length-0123456789';
let dir = '';
let file: ManifestsFile | undefined;
let a: ProxyProcess | undefined;
let b: ProxyProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'klp-auth-'));
  await writeFile(join(dir, 'secret'), `${SECRET}\n`);
  await writeFile(join(dir, 'other'), 'another-secret-entirely-0123456789');
  await writeFile(join(dir, 'empty'), '\n');
  file = await manifestsFile([
    service('echo', { clusterIP: '127.0.116.50', ports: [{ name: 'grpc', port: 8080 }] }),
    endpointSlice('echo-1', ['127.0.116.11']),
  ]);
  const args = (node: string, secret: string): string[] => [
    '--source',
    `file:${file?.path}`,
    '--intercept',
    'none',
    '--node-name',
    node,
    '--peers',
    '127.0.116.1:9901,127.0.116.2:9901',
    '--peer-secret-file',
    join(dir, secret),
    '--cluster-sync-interval',
    '500ms',
  ];
  a = await startProxyProcess(args('node-a', 'secret'), 15_000, '127.0.116.1:9901');
  // Node B serves nothing A can reach (a different ClusterIP is not needed: it only talks).
  b = await startProxyProcess(
    [
      ...args('node-b', 'other').slice(0, 1),
      `file:${file.path}`,
      ...args('node-b', 'other').slice(2),
    ],
    15_000,
    '127.0.116.2:9901',
  );
});

afterAll(async () => {
  await a?.stop('SIGKILL');
  await b?.stop('SIGKILL');
  await file?.remove();
  await rm(dir, { recursive: true, force: true });
});

const url = `http://127.0.116.1:9901${REPORT_PATH}`;

function report(node: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      node,
      seq: 1,
      ports: { 'default/echo:grpc': { '127.0.116.11:9000': [7, 0] } },
    }),
  );
}

async function postSigned(
  body: Buffer,
  secret: string,
  ts = Date.now(),
): Promise<{ status: number; body: Buffer; headers: Headers; signature: string }> {
  const signature = signRequest(Buffer.from(secret), 'POST', REPORT_PATH, ts, body);
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { [HEADER_TIMESTAMP]: String(ts), [HEADER_SIGNATURE]: signature },
  });
  return {
    status: res.status,
    body: Buffer.from(await res.arrayBuffer()),
    headers: res.headers,
    signature,
  };
}

async function state(): Promise<DebugState> {
  return (await (await fetch('http://127.0.116.1:9901/debug/state')).json()) as DebugState;
}

describe('cluster view: peers authenticate', () => {
  it('a request without a signature is refused (401) and counted', async () => {
    const res = await fetch(url, { method: 'POST', body: report('intruder') });
    expect(res.status).toBe(401);
    expect(
      await a!.metric('kube_lc_proxy_cluster_auth_failures_total', { reason: 'missing' }),
    ).toBeGreaterThanOrEqual(1);
    expect((await state()).cluster?.peers.map((p) => p.node)).not.toContain('intruder');
  });

  it('a request signed with a wrong secret, or too old, is refused (401) and counted', async () => {
    expect((await postSigned(report('intruder'), 'not-the-secret-0123456789')).status).toBe(401);
    expect((await postSigned(report('intruder'), SECRET, Date.now() - 120_000)).status).toBe(401);
    expect(await a!.metric('kube_lc_proxy_cluster_auth_failures_total', { reason: 'stale' })).toBe(
      1,
    );
    expect(
      await a!.metric('kube_lc_proxy_cluster_auth_failures_total', { reason: 'bad_signature' }),
    ).toBeGreaterThanOrEqual(1);
    expect((await state()).cluster?.peers.map((p) => p.node)).not.toContain('intruder');
  });

  it('a peer with another secret changes nothing: both sides refuse and count it', async () => {
    await waitFor(
      'node-b refused',
      async () =>
        (await b!.metric('kube_lc_proxy_cluster_exchanges_total', { result: 'unauthorized' })) > 0,
      10_000,
    );
    expect((await state()).cluster?.peers.map((p) => p.node)).not.toContain('node-b');
    expect(await a!.metric('kube_lc_proxy_cluster_peer_up', { peer: '127.0.116.2:9901' })).toBe(0);
  });

  it('a signed report is taken, and the answer is signed over the request', async () => {
    const res = await postSigned(report('node-c'), SECRET);
    expect(res.status).toBe(200);
    const failure = verify(
      {
        timestamp: res.headers.get(HEADER_TIMESTAMP) ?? undefined,
        signature: res.headers.get(HEADER_SIGNATURE) ?? undefined,
      },
      (ts) => signResponse(Buffer.from(SECRET), res.signature, 200, ts, res.body),
      Date.now(),
    );
    expect(failure).toBeUndefined();
    expect(parseReport(res.body.toString('utf8')).node).toBe('node-a');
    // The same answer does not verify for another request.
    expect(
      verify(
        {
          timestamp: res.headers.get(HEADER_TIMESTAMP) ?? undefined,
          signature: res.headers.get(HEADER_SIGNATURE) ?? undefined,
        },
        (ts) => signResponse(Buffer.from(SECRET), 'another-request', 200, ts, res.body),
        Date.now(),
      ),
    ).toBe('bad_signature');
    expect((await state()).cluster?.peers.map((p) => p.node)).toContain('node-c');
    // The next round applies the view (the interval is 500 ms).
    await waitFor(
      'the view in use',
      async () => (await state()).cluster?.mode === 'cluster',
      10_000,
    );
  });

  it('a signed but malformed report is refused (400), counted, and the proxy goes on', async () => {
    expect((await postSigned(Buffer.from('{"node": 5'), SECRET)).status).toBe(400);
    expect(
      (
        await postSigned(
          Buffer.from(JSON.stringify({ node: 'x', seq: 1, ports: { a: { b: [-1, 0] } } })),
          SECRET,
        )
      ).status,
    ).toBe(400);
    expect(await a!.metric('kube_lc_proxy_cluster_bad_reports_total', { reason: 'json' })).toBe(1);
    expect(await a!.metric('kube_lc_proxy_cluster_bad_reports_total', { reason: 'shape' })).toBe(1);
    expect((await fetch('http://127.0.116.1:9901/healthz')).status).toBe(200);
  });
});

describe('cluster view: secret flags', () => {
  const run = (extra: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(
      process.execPath,
      [
        'bin/kube-lc-proxy.js',
        'run',
        '--source',
        `file:${file?.path}`,
        '--intercept',
        'none',
        '--metrics-address',
        '127.0.116.9:0',
        ...extra,
      ],
      { encoding: 'utf8', timeout: 15_000 },
    );
    return { status: r.status, stderr: r.stderr };
  };

  it('--peers without --peer-secret-file is a usage error', () => {
    const r = run(['--peers', '127.0.116.1:9901']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--peer-secret-file');
  });

  it.each([
    ['missing', 'does-not-exist'],
    ['empty', 'empty'],
  ])(
    'a secret file that is %s stops the start with a message naming the flag and the file',
    (_what, name) => {
      const r = run(['--peers', '127.0.116.1:9901', '--peer-secret-file', join(dir, name)]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('--peer-secret-file');
      expect(r.stderr).toContain(join(dir, name));
    },
  );
});
