/** The stand-in API server's own rules: selectors, routes, resourceVersions, errors. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeApiServer,
  ObjectStore,
  parseLabelSelector,
  parseRoute,
  SelectorParseError,
} from '../support/apiserver/index.js';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', 'service.kubernetes.io/service-proxy-name': 'x' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app', true],
    ['!app', false],
    ['!missing', true],
    ['app=web,tier=front', true],
    ['app=web,tier=back', false],
    ['app in (db, web)', true],
    ['app notin (web)', false],
    ['missing notin (web)', true],
    ['!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless', false],
    ['service.kubernetes.io/service-proxy-name=x', true],
  ])('%j matches: %s', (sel, expected) => {
    expect(parseLabelSelector(sel).matches(labels)).toBe(expected);
  });

  it.each(['=web', 'a b', 'app=we b', '!', 'app in (a b)'])('rejects %j', (sel) => {
    expect(() => parseLabelSelector(sel)).toThrow(SelectorParseError);
  });

  it('an empty value is a value: "app=" matches only app=""', () => {
    expect(parseLabelSelector('app=').matches({ app: '' })).toBe(true);
    expect(parseLabelSelector('app=').matches(labels)).toBe(false);
  });
});

describe('routes', () => {
  it.each([
    ['/api/v1/services', { resource: 'services', namespace: undefined, name: undefined }],
    ['/api/v1/namespaces/ns/services', { resource: 'services', namespace: 'ns', name: undefined }],
    ['/api/v1/namespaces/ns/services/web', { resource: 'services', namespace: 'ns', name: 'web' }],
    [
      '/apis/discovery.k8s.io/v1/endpointslices',
      { resource: 'endpointslices', namespace: undefined, name: undefined },
    ],
    [
      '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices',
      { resource: 'endpointslices', namespace: 'ns', name: undefined },
    ],
    ['/api/v1/nodes/node-1', { resource: 'nodes', namespace: undefined, name: 'node-1' }],
    ['/api/v1/pods', undefined],
    ['/api/v1/namespaces/ns/nodes', undefined],
    ['/api/v1/services/a/b', undefined],
    ['/apis/discovery.k8s.io/v1/services', undefined],
  ])('%s', (path, route) => {
    expect(parseRoute(path)).toEqual(route);
  });
});

describe('ObjectStore', () => {
  it('one increasing RV across kinds; DELETED carries the last state with a new RV', () => {
    const store = new ObjectStore();
    const a = store.upsert('services', { kind: 'Service', metadata: { name: 'a' } });
    const s = store.upsert('endpointslices', { metadata: { name: 's', namespace: 'x' } });
    const a2 = store.upsert('services', { metadata: { name: 'a' }, spec: { n: 1 } });
    expect([a, s, a2].map((o) => Number(o.metadata.resourceVersion))).toEqual([2, 3, 4]);
    expect(a2.metadata.uid).toBe(a.metadata.uid);
    expect(a.metadata.namespace).toBe('default');
    expect('kind' in a).toBe(false);
    store.delete('services', 'default', 'a');
    expect(store.eventsSince('services', 0).map((e) => e.type)).toEqual([
      'ADDED',
      'MODIFIED',
      'DELETED',
    ]);
    const deleted = store.eventsSince('services', 4)[0]!;
    expect(deleted.object.metadata.resourceVersion).toBe('5');
    expect(deleted.object['spec']).toEqual({ n: 1 });
    store.compact('services');
    expect(store.compactedRV('services')).toBe(5);
    expect(store.eventsSince('services', 0)).toEqual([]);
  });
});

describe('FakeApiServer HTTP', () => {
  let api: FakeApiServer | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('answers unknown paths with a 404 Status and checks the bearer token first', async () => {
    api = await FakeApiServer.start({ token: 't' });
    const unauth = await fetch(`${api.url}/api/v1/services`);
    expect(unauth.status).toBe(401);
    expect(await unauth.json()).toMatchObject({
      kind: 'Status',
      code: 401,
      reason: 'Unauthorized',
    });
    const missing = await fetch(`${api.url}/api/v1/pods`, {
      headers: { authorization: 'Bearer t' },
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ kind: 'Status', code: 404, reason: 'NotFound' });
    const badSel = await fetch(`${api.url}/api/v1/services?labelSelector=a%20b`, {
      headers: { authorization: 'Bearer t' },
    });
    expect(badSel.status).toBe(400);
  });

  it('lists with Content-Type, the current RV and items without kind; watches from a compacted RV get ERROR 410', async () => {
    api = await FakeApiServer.start();
    api.upsert('services', { metadata: { name: 'a' } });
    const list = await fetch(`${api.url}/api/v1/services`);
    expect(list.headers.get('content-type')).toBe('application/json');
    const body = (await list.json()) as {
      kind: string;
      metadata: { resourceVersion: string };
      items: object[];
    };
    expect(body.kind).toBe('ServiceList');
    expect(body.metadata.resourceVersion).toBe(String(api.store.resourceVersion));
    expect(body.items[0]).not.toHaveProperty('kind');
    api.upsert('services', { metadata: { name: 'b' } });
    api.expire('services');
    const watch = await fetch(`${api.url}/api/v1/services?watch=true&resourceVersion=1`);
    const lines = (await watch.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as object);
    expect(lines).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }),
      },
    ]);
  });

  it('in reset mode, counts and resets connections while stopped; restarts on the same port', async () => {
    api = await FakeApiServer.start();
    const port = api.port;
    await api.stop({ outage: 'reset' });
    await expect(fetch(`${api.url}/api/v1/services`)).rejects.toThrow();
    expect(api.outageConnections.length).toBeGreaterThanOrEqual(1);
    await api.restart();
    expect(api.port).toBe(port);
    expect((await fetch(`${api.url}/api/v1/services`)).status).toBe(200);
  });
});
