/**
 * The stand-in's write path and the documents kubectl reads: Leases with optimistic
 * concurrency, create/replace/patch/delete with the real Status bodies, discovery, tables.
 */
import * as k8s from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  FakeApiServer,
  kindOf,
  PatchError,
} from '../support/apiserver/index.js';
import { microTime } from '../support/apiserver/kinds/lease.js';

let api: FakeApiServer | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases';

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${api!.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}

let renewals = 0;
function lease(holder: string, rv?: string): Record<string, unknown> {
  const renewTime = new Date(Date.UTC(2026, 0, 1, 0, 0, ++renewals)).toISOString();
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'kube-lc-proxy', ...(rv !== undefined ? { resourceVersion: rv } : {}) },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime },
  };
}

describe('Leases (leader election)', () => {
  it('create, get, update with the current RV, and a stale update gets 409 Conflict with the real Status', async () => {
    api = await FakeApiServer.start();
    const missing = await call('GET', `${LEASES}/kube-lc-proxy`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'leases.coordination.k8s.io "kube-lc-proxy" not found',
      reason: 'NotFound',
      details: { name: 'kube-lc-proxy', group: 'coordination.k8s.io', kind: 'leases' },
      code: 404,
    });
    const created = await call('POST', LEASES, lease('node-a'));
    expect(created.status).toBe(201);
    const rv1 = (created.body['metadata'] as { resourceVersion: string }).resourceVersion;
    expect(created.body).toMatchObject({ kind: 'Lease', apiVersion: 'coordination.k8s.io/v1' });

    const again = await call('POST', LEASES, lease('node-b'));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ reason: 'AlreadyExists', code: 409 });

    const renewed = await call('PUT', `${LEASES}/kube-lc-proxy`, lease('node-a', rv1));
    expect(renewed.status).toBe(200);
    const rv2 = (renewed.body['metadata'] as { resourceVersion: string }).resourceVersion;
    expect(Number(rv2)).toBeGreaterThan(Number(rv1));

    const stale = await call('PUT', `${LEASES}/kube-lc-proxy`, lease('node-b', rv1));
    expect(stale.status).toBe(409);
    expect(stale.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Operation cannot be fulfilled on leases.coordination.k8s.io "kube-lc-proxy": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'kube-lc-proxy', group: 'coordination.k8s.io', kind: 'leases' },
      code: 409,
    });
    const got = await call('GET', `${LEASES}/kube-lc-proxy`);
    expect(got.body['spec']).toMatchObject({ holderIdentity: 'node-a' });
  });

  it('an update without resourceVersion is 422 (no unconditional update); a PUT of a missing Lease creates it', async () => {
    api = await FakeApiServer.start();
    const put = await call('PUT', `${LEASES}/kube-lc-proxy`, lease('node-a'));
    expect(put.status).toBe(201);
    const blind = await call('PUT', `${LEASES}/kube-lc-proxy`, lease('node-b'));
    expect(blind.status).toBe(422);
    expect(blind.body).toMatchObject({
      reason: 'Invalid',
      message:
        'leases.coordination.k8s.io "kube-lc-proxy" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
    });
  });

  it('list and watch: a watch from the list RV sees the renewal as MODIFIED', async () => {
    api = await FakeApiServer.start();
    await call('POST', LEASES, lease('node-a'));
    const list = await call('GET', LEASES);
    expect(list.body['kind']).toBe('LeaseList');
    const listRv = (list.body['metadata'] as { resourceVersion: string }).resourceVersion;
    const items = list.body['items'] as { metadata: { resourceVersion: string } }[];
    const controller = new AbortController();
    const watch = await fetch(`${api.url}${LEASES}?watch=true&resourceVersion=${listRv}`, {
      signal: controller.signal,
    });
    await call(
      'PUT',
      `${LEASES}/kube-lc-proxy`,
      lease('node-b', items[0]!.metadata.resourceVersion),
    );
    const reader = watch.body!.getReader();
    let text = '';
    while (!text.includes('\n')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const ev = JSON.parse(text.split('\n')[0]!) as {
      type: string;
      object: Record<string, unknown>;
    };
    expect(ev.type).toBe('MODIFIED');
    expect(ev.object).toMatchObject({ kind: 'Lease', spec: { holderIdentity: 'node-b' } });
  });
});

describe('writes over HTTP', () => {
  const SVC = '/api/v1/namespaces/default/services';
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: { clusterIP: '127.0.0.60', ports: [{ name: 'a', port: 80 }] },
  };

  it('create applies the registry defaults; a namespace mismatch is 400; unknown fields follow fieldValidation', async () => {
    api = await FakeApiServer.start();
    const made = await call('POST', SVC, svc);
    expect(made.status).toBe(201);
    expect(made.body['spec']).toMatchObject({
      type: 'ClusterIP',
      clusterIPs: ['127.0.0.60'],
      ports: [{ name: 'a', port: 80, protocol: 'TCP', targetPort: 80 }],
    });
    const wrongNs = await call('POST', '/api/v1/namespaces/other/services', {
      ...svc,
      metadata: { name: 'x', namespace: 'default' },
    });
    expect(wrongNs.status).toBe(400);
    const bogus = { ...svc, metadata: { name: 'b' }, spec: { ...svc.spec, bogus: 1 } };
    const strict = await call('POST', `${SVC}?fieldValidation=Strict`, bogus);
    expect(strict.status).toBe(400);
    expect(strict.body['message']).toContain('strict decoding error: unknown field "spec.bogus"');
    const warned = await call('POST', `${SVC}?fieldValidation=Warn`, bogus);
    expect(warned.status).toBe(201);
    expect(warned.headers.get('warning')).toContain('unknown field \\"spec.bogus\\"');
    expect(warned.body['spec']).not.toHaveProperty('bogus');
    const badType = await call('POST', SVC, {
      ...svc,
      metadata: { name: 'c' },
      spec: { ports: [{ port: 'x' }] },
    });
    expect(badType.status).toBe(400);
  });

  it('strategic merge patch merges Service ports by port; a no-op patch keeps the RV', async () => {
    api = await FakeApiServer.start();
    await call('POST', SVC, svc);
    const smp = { 'content-type': 'application/strategic-merge-patch+json' };
    const p1 = await call(
      'PATCH',
      `${SVC}/web`,
      { spec: { ports: [{ port: 81, name: 'b' }] } },
      smp,
    );
    expect(p1.status).toBe(200);
    const ports = (p1.body['spec'] as { ports: { port: number }[] }).ports.map((p) => p.port);
    expect(ports).toEqual([80, 81]);
    const rv = (p1.body['metadata'] as { resourceVersion: string }).resourceVersion;
    const p2 = await call('PATCH', `${SVC}/web`, { metadata: { labels: { app: 'web' } } }, smp);
    expect((p2.body['metadata'] as { resourceVersion: string }).resourceVersion).toBe(rv);
    const stale = await call(
      'PATCH',
      `${SVC}/web`,
      { metadata: { resourceVersion: '1', labels: { a: 'b' } } },
      smp,
    );
    expect(stale.status).toBe(409);
    const ssa = await call(
      'PATCH',
      `${SVC}/web`,
      {},
      { 'content-type': 'application/apply-patch+yaml' },
    );
    expect(ssa.status).toBe(415);
  });

  it('delete answers a Service with the object and an EndpointSlice with a Success Status; 404 after', async () => {
    api = await FakeApiServer.start();
    await call('POST', SVC, svc);
    const del = await call('DELETE', `${SVC}/web`, { propagationPolicy: 'Background' });
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ kind: 'Service', metadata: { name: 'web' } });
    const slices = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';
    await call('POST', slices, { metadata: { name: 's' }, addressType: 'IPv4', endpoints: [] });
    const delSlice = await call('DELETE', `${slices}/s`);
    expect(delSlice.body).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 's', group: 'discovery.k8s.io', kind: 'endpointslices' },
    });
    const again = await call('DELETE', `${slices}/s`);
    expect(again.status).toBe(404);
    expect(again.body['message']).toBe('endpointslices.discovery.k8s.io "s" not found');
  });

  it('unknown resources get the real 404 body; nodes serve get only (405 otherwise)', async () => {
    api = await FakeApiServer.start();
    const pods = await call('GET', '/api/v1/pods');
    expect(pods.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the server could not find the requested resource',
      reason: 'NotFound',
      details: {},
      code: 404,
    });
    expect((await call('GET', '/api/v1/nodes')).status).toBe(405);
  });
});

describe('documents kubectl reads', () => {
  it('aggregated discovery when asked for, legacy otherwise; /version; OpenAPI v3 names fieldValidation', async () => {
    api = await FakeApiServer.start();
    const accept =
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json';
    const agg = await fetch(`${api.url}/apis`, { headers: { accept } });
    expect(agg.headers.get('content-type')).toBe(
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
    );
    const groups = ((await agg.json()) as { items: { metadata: { name: string } }[] }).items;
    expect(groups.map((g) => g.metadata.name)).toEqual(['discovery.k8s.io', 'coordination.k8s.io']);
    const legacy = (await (await fetch(`${api.url}/api/v1`)).json()) as {
      resources: { name: string; shortNames?: string[] }[];
    };
    expect(legacy.resources.find((r) => r.name === 'services')?.shortNames).toEqual(['svc']);
    expect(await (await fetch(`${api.url}/version`)).json()).toMatchObject({
      major: '1',
      minor: '32',
    });
    const root = (await (await fetch(`${api.url}/openapi/v3`)).json()) as {
      paths: Record<string, { serverRelativeURL: string }>;
    };
    const gv = await (
      await fetch(`${api.url}${root.paths['apis/coordination.k8s.io/v1']!.serverRelativeURL}`)
    ).json();
    expect(JSON.stringify(gv)).toContain('"fieldValidation"');
  });

  it('a list asked for as=Table has the kind columns and rows with metadata', async () => {
    api = await FakeApiServer.start();
    api.upsert('services', {
      metadata: { name: 'web', namespace: 'ns1' },
      spec: { type: 'ClusterIP', clusterIP: '127.0.0.60', ports: [{ port: 80, protocol: 'TCP' }] },
    });
    const res = await fetch(`${api.url}/api/v1/services`, {
      headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' },
    });
    const table = (await res.json()) as {
      kind: string;
      columnDefinitions: { name: string }[];
      rows: { cells: unknown[]; object: { metadata: { namespace: string } } }[];
    };
    expect(table.kind).toBe('Table');
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(
      kindOf('services').table.columns.map((c) => c.name),
    );
    expect(table.rows[0]!.cells.slice(0, 5)).toEqual([
      'web',
      'ClusterIP',
      '127.0.0.60',
      '<none>',
      '80/TCP',
    ]);
    expect(table.rows[0]!.object.metadata.namespace).toBe('ns1');
  });
});

describe('patch semantics (pure)', () => {
  const meta = kindOf('services');
  it.each([
    [
      'ports merge by port, $patch: delete removes one',
      { spec: { ports: [{ port: 80, name: 'a' }, { port: 81 }] } },
      { spec: { ports: [{ port: 81, $patch: 'delete' }, { port: 82 }] } },
      { spec: { ports: [{ port: 80, name: 'a' }, { port: 82 }] } },
    ],
    [
      '$setElementOrder puts the named items first, in order',
      { spec: { ports: [{ port: 80 }, { port: 81 }] } },
      {
        spec: {
          $setElementOrder: undefined,
          '$setElementOrder/ports': [{ port: 81 }, { port: 80 }],
        },
      },
      { spec: { ports: [{ port: 81 }, { port: 80 }] } },
    ],
    [
      'atomic lists are replaced; null deletes a map key',
      { spec: { externalIPs: ['a'], selector: { app: 'x', tier: 'y' } } },
      { spec: { externalIPs: ['b'], selector: { tier: null } } },
      { spec: { externalIPs: ['b'], selector: { app: 'x' } } },
    ],
    [
      'finalizers merge as a set; $deleteFromPrimitiveList removes',
      { metadata: { finalizers: ['a', 'b'] } },
      { metadata: { finalizers: ['c'], '$deleteFromPrimitiveList/finalizers': ['a'] } },
      { metadata: { finalizers: ['b', 'c'] } },
    ],
  ])('%s', (_name, target, patch, expected) => {
    const clean = JSON.parse(JSON.stringify(patch));
    expect(applyStrategicMergePatch(target as never, clean, meta)).toEqual(expected);
  });

  it('merge patch (RFC 7386) and JSON patch (RFC 6902)', () => {
    expect(applyMergePatch({ a: { b: 1, c: 2 }, l: [1] }, { a: { b: null }, l: [2] })).toEqual({
      a: { c: 2 },
      l: [2],
    });
    const doc = { endpoints: [{ conditions: { ready: true } }, { conditions: { ready: true } }] };
    const out = applyJsonPatch(doc, [
      {
        op: 'replace',
        path: '/endpoints/1/conditions',
        value: { ready: false, terminating: true },
      },
      { op: 'add', path: '/endpoints/-', value: { addresses: ['x'] } },
      { op: 'test', path: '/endpoints/0/conditions/ready', value: true },
    ]);
    expect(out).toEqual({
      endpoints: [
        { conditions: { ready: true } },
        { conditions: { ready: false, terminating: true } },
        { addresses: ['x'] },
      ],
    });
    expect(doc.endpoints[1]!.conditions).toEqual({ ready: true });
    expect(() => applyJsonPatch(doc, [{ op: 'remove', path: '/endpoints/5' }])).toThrow(PatchError);
    expect(() =>
      applyJsonPatch(doc, [{ op: 'test', path: '/endpoints/0/conditions/ready', value: false }]),
    ).toThrow(PatchError);
  });
});

describe('Lease MicroTime', () => {
  it.each([
    ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000000Z'],
    ['2026-01-01T00:00:00.5Z', '2026-01-01T00:00:00.500000Z'],
    ['2026-01-01T00:00:00.123456789Z', '2026-01-01T00:00:00.123456Z'],
    ['2026-01-01T02:00:00.25+02:00', '2026-01-01T00:00:00.250000Z'],
  ])('%s is stored as %s', (input, stored) => {
    expect(microTime(input, 'spec.renewTime')).toBe(stored);
  });

  it.each(['yesterday', '2026-01-01', 1700000000])('%j is a 400', (input) => {
    expect(() => microTime(input, 'spec.renewTime')).toThrow(/not an RFC 3339 time/);
  });
});

describe('Leases through client-node (what leader election calls)', () => {
  it('read 404, create, replace with the read RV, a stale replace throws ApiException 409', async () => {
    api = await FakeApiServer.start();
    const dir = await mkdtemp(join(tmpdir(), 'klp-lease-'));
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(await api.writeKubeconfig(join(dir, 'kc.yaml')));
      const coord = kc.makeApiClient(k8s.CoordinationV1Api);
      const ns = 'kube-system';
      const name = 'kube-lc-proxy-view';
      const codeOf = (err: unknown): number | undefined => (err as { code?: number }).code;
      await expect(coord.readNamespacedLease({ name, namespace: ns })).rejects.toSatisfy(
        (err) => codeOf(err) === 404,
      );
      const body = (holder: string, resourceVersion?: string): k8s.V1Lease => ({
        metadata: { name, namespace: ns, ...(resourceVersion ? { resourceVersion } : {}) },
        spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: new Date() },
      });
      const created = await coord.createNamespacedLease({ namespace: ns, body: body('node-a') });
      const rv = created.metadata?.resourceVersion;
      expect(rv).toMatch(/^\d+$/);
      const read = await coord.readNamespacedLease({ name, namespace: ns });
      expect(read.spec?.holderIdentity).toBe('node-a');
      // MicroTime, as the apiserver stores it (client-node hands it over as the wire string).
      expect(String(read.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const taken = await coord.replaceNamespacedLease({
        name,
        namespace: ns,
        body: body('node-b', rv),
      });
      expect(taken.spec?.holderIdentity).toBe('node-b');
      await expect(
        coord.replaceNamespacedLease({ name, namespace: ns, body: body('node-c', rv) }),
      ).rejects.toSatisfy((err) => codeOf(err) === 409);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Service status is a subresource', () => {
  it('is dropped on create and kept on replace and patch of the Service', async () => {
    api = await FakeApiServer.start();
    const SVC = '/api/v1/namespaces/default/services';
    const status = { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } };
    const made = await call('POST', SVC, {
      metadata: { name: 'lb' },
      spec: { type: 'LoadBalancer', clusterIP: '127.0.0.61', ports: [{ port: 80 }] },
      status,
    });
    expect(made.body['status']).toEqual({ loadBalancer: {} });
    api.upsert('services', { ...made.body, status });
    const got = await call('GET', `${SVC}/lb`);
    const put = await call('PUT', `${SVC}/lb`, { ...got.body, status: { loadBalancer: {} } });
    expect(put.body['status']).toEqual(status);
  });
});
