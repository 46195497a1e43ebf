import { describe, expect, it } from 'vitest';
import {
  normalizeIP,
  validateEndpointSlice,
  validateService,
} from '../../src/servicetable/validate.js';
import { endpointSlice, service } from '../support/objects.js';

describe('validateService', () => {
  it('keeps the fields the proxy uses', () => {
    const v = validateService(service('echo', { clusterIP: '127.0.0.50' }));
    expect(v.problems).toEqual([]);
    expect(v.value).toEqual({
      namespace: 'default',
      name: 'echo',
      clusterIP: '127.0.0.50',
      family: 'IPv4',
      internalTrafficPolicy: 'Cluster',
      ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
    });
  });

  it.each([
    ['headless', { clusterIP: 'None' }, 'headless Service (no clusterIP)'],
    ['no clusterIP', { clusterIP: '' }, 'headless Service (no clusterIP)'],
    ['ExternalName', { type: 'ExternalName' }, 'ExternalName Service'],
  ])('skips a %s Service with a reason', (_n, opts, reason) => {
    const v = validateService(service('echo', opts));
    expect(v.value).toBeUndefined();
    expect(v.problems).toEqual([]);
    expect(v.skip).toEqual({ object: 'Service default/echo', reason });
  });

  it.each([
    [
      'a port out of range',
      { ports: [{ name: 'a', port: 70000 }] },
      'spec.ports[0].port',
      /1 to 65535.*70000/,
    ],
    [
      'a bad protocol',
      { ports: [{ name: 'a', port: 80, protocol: 'QUIC' }] },
      'spec.ports[0].protocol',
      /QUIC/,
    ],
    ['a bad clusterIP', { clusterIP: '10.0.0.300' }, 'spec.clusterIP', /10\.0\.0\.300/],
    [
      'a bad traffic policy',
      { internalTrafficPolicy: 'Nearby' },
      'spec.internalTrafficPolicy',
      /Nearby/,
    ],
  ])('names the field for %s', (_n, opts, field, message) => {
    const v = validateService(service('echo', opts));
    expect(v.problems).toHaveLength(1);
    expect(v.problems[0]).toMatchObject({ object: 'Service default/echo', field });
    expect(v.problems[0]?.message).toMatch(message);
  });

  it('drops a bad port and keeps the good ones', () => {
    const v = validateService(
      service('echo', {
        ports: [
          { name: 'a', port: 0 },
          { name: 'b', port: 81 },
        ],
      }),
    );
    expect(v.value?.ports).toEqual([{ name: 'b', port: 81, protocol: 'TCP' }]);
    expect(v.problems.map((p) => p.field)).toEqual(['spec.ports[0].port']);
  });

  it('skips non-TCP ports with a note, not a problem', () => {
    const v = validateService(
      service('dns', {
        ports: [
          { name: 'udp', port: 53, protocol: 'UDP' },
          { name: 'tcp', port: 53 },
        ],
      }),
    );
    expect(v.problems).toEqual([]);
    expect(v.value?.ports.map((p) => p.name)).toEqual(['tcp']);
    expect(v.notes[0]?.reason).toMatch(/UDP port 53 skipped/);
  });

  it.each([
    ['not an object', 'text', ''],
    ['no metadata', { spec: {} }, 'metadata'],
    ['no name', { metadata: { namespace: 'a' }, spec: {} }, 'metadata.name'],
    ['no spec', { metadata: { name: 'a' } }, 'spec'],
  ])('rejects an object with %s', (_n, raw, field) => {
    const v = validateService(raw);
    expect(v.value).toBeUndefined();
    expect(v.problems[0]?.field).toBe(field);
  });

  it('defaults the namespace as kubectl does', () => {
    const raw = service('echo');
    delete (raw.metadata as Record<string, unknown>).namespace;
    expect(validateService(raw).value?.namespace).toBe('default');
  });

  it('uses clusterIPs[0] when clusterIP is absent, and normalises IPv6', () => {
    const raw = service('v6');
    const spec = raw.spec as Record<string, unknown>;
    delete spec.clusterIP;
    spec.clusterIPs = ['FD00:0:0::0010'];
    expect(validateService(raw).value).toMatchObject({ clusterIP: 'fd00::10', family: 'IPv6' });
  });
});

describe('validateEndpointSlice', () => {
  it('applies kube-proxy condition defaults: missing ready/serving true, terminating false', () => {
    const v = validateEndpointSlice(
      endpointSlice('s', [{ ip: '10.0.0.1', ready: null, serving: null, terminating: null }]),
    );
    expect(v.value?.endpoints[0]).toMatchObject({ ready: true, serving: true, terminating: false });
  });

  it('uses addresses[0] only', () => {
    const raw = endpointSlice('s', ['10.0.0.1']);
    ((raw.endpoints as Record<string, unknown>[])[0] as Record<string, unknown>).addresses = [
      '10.0.0.1',
      '10.0.0.2',
    ];
    expect(validateEndpointSlice(raw).value?.endpoints.map((e) => e.address)).toEqual(['10.0.0.1']);
  });

  it('skips FQDN slices', () => {
    const v = validateEndpointSlice(endpointSlice('s', [], { addressType: 'FQDN' }));
    expect(v.value).toBeUndefined();
    expect(v.skip?.reason).toBe('FQDN EndpointSlice');
  });

  it('requires the service-name label', () => {
    const raw = endpointSlice('s', ['10.0.0.1']);
    (raw.metadata as Record<string, unknown>).labels = {};
    const v = validateEndpointSlice(raw);
    expect(v.value).toBeUndefined();
    expect(v.problems[0]?.field).toBe('metadata.labels["kubernetes.io/service-name"]');
  });

  it('ignores ports with no name or no number, as kube-proxy does', () => {
    const v = validateEndpointSlice(
      endpointSlice('s', ['10.0.0.1'], {
        ports: [
          { name: null, port: 1 },
          { name: 'a', port: null },
          { name: 'b', port: 2 },
        ],
      }),
    );
    expect(v.problems).toEqual([]);
    expect(v.value?.ports).toEqual([{ name: 'b', port: 2, protocol: 'TCP' }]);
  });

  it.each([
    ['an address of the wrong family', ['fd00::1'], 'endpoints[0].addresses[0]'],
    ['a bad address', ['10.0.0.999'], 'endpoints[0].addresses[0]'],
  ])('drops an endpoint with %s and names the field', (_n, ips, field) => {
    const v = validateEndpointSlice(endpointSlice('s', [...ips, '10.0.0.2']));
    expect(v.value?.endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
    expect(v.problems.map((p) => p.field)).toEqual([field]);
  });

  it('names the field of a non-boolean condition and uses the default', () => {
    const raw = endpointSlice('s', ['10.0.0.1']);
    ((raw.endpoints as Record<string, unknown>[])[0] as Record<string, unknown>).conditions = {
      ready: 'yes',
    };
    const v = validateEndpointSlice(raw);
    expect(v.value?.endpoints[0]?.ready).toBe(true);
    expect(v.problems[0]?.field).toBe('endpoints[0].conditions.ready');
  });
});

describe('normalizeIP', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['FD00::1', 'fd00::1'],
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
  ])('%s → %s', (input, out) => {
    expect(normalizeIP(input)).toBe(out);
  });
});
