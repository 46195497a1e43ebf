import { describe, expect, it } from 'vitest';
import { ServiceTableBuilder } from '../../src/servicetable/builder.js';
import type { ServicePort } from '../../src/servicetable/types.js';
import { endpointSlice, service } from '../support/objects.js';

function port(b: ServiceTableBuilder, key = 'default/echo:grpc'): ServicePort {
  const sp = b.build().ports.get(key);
  if (sp === undefined) throw new Error(`no ${key} in table`);
  return sp;
}

const keys = (sp: ServicePort): string[] => sp.endpoints.map((e) => e.key);
const eligible = (sp: ServicePort): string[] =>
  sp.endpoints.filter((e) => e.eligible).map((e) => e.key);

describe('ServiceTableBuilder', () => {
  it('joins slices to the Service by label and to ports by name + protocol', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(
      service('echo', {
        ports: [
          { name: 'grpc', port: 8080 },
          { name: 'metrics', port: 9090 },
        ],
      }),
    );
    b.upsertEndpointSlice(
      endpointSlice('echo-1', ['10.0.0.1', '10.0.0.2'], {
        ports: [
          { name: 'grpc', port: 9000 },
          { name: 'metrics', port: 9100 },
        ],
      }),
    );
    b.upsertEndpointSlice(endpointSlice('other-1', ['10.0.9.9'], { service: 'other' }));
    expect(keys(port(b))).toEqual(['10.0.0.1:9000', '10.0.0.2:9000']);
    expect(keys(port(b, 'default/echo:metrics'))).toEqual(['10.0.0.1:9100', '10.0.0.2:9100']);
    expect(port(b)).toMatchObject({ clusterIP: '10.96.0.10', port: 8080 });
  });

  it('does not join a port whose protocol differs', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(
      endpointSlice('e', ['10.0.0.1'], { ports: [{ name: 'grpc', port: 9000, protocol: 'UDP' }] }),
    );
    expect(keys(port(b))).toEqual([]);
  });

  it('merges several slices and counts an endpoint in two slices once', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(endpointSlice('echo-a', ['10.0.0.1', '10.0.0.2']));
    b.upsertEndpointSlice(endpointSlice('echo-b', ['10.0.0.2', '10.0.0.3']));
    expect(keys(port(b))).toEqual(['10.0.0.1:9000', '10.0.0.2:9000', '10.0.0.3:9000']);
  });

  it.each([
    ['the terminating copy comes first', 'echo-a', 'echo-b'],
    ['the terminating copy comes last', 'echo-b', 'echo-a'],
  ])('lets the non-terminating copy of a duplicate win when %s', (_n, termSlice, readySlice) => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(
      endpointSlice(termSlice, [{ ip: '10.0.0.1', ready: false, terminating: true }]),
    );
    b.upsertEndpointSlice(endpointSlice(readySlice, ['10.0.0.1']));
    expect(port(b).endpoints).toEqual([
      expect.objectContaining({ key: '10.0.0.1:9000', state: 'ready' }),
    ]);
  });

  it('uses ready endpoints, else serving + terminating ones', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(
      endpointSlice('e', [
        '10.0.0.1',
        { ip: '10.0.0.2', ready: false, serving: true, terminating: true },
        { ip: '10.0.0.3', ready: false, serving: false, terminating: true },
        { ip: '10.0.0.4', ready: false, serving: false, terminating: false },
      ]),
    );
    expect(eligible(port(b))).toEqual(['10.0.0.1:9000']);
    expect(port(b).endpoints.map((e) => e.state)).toEqual([
      'ready',
      'terminating',
      'terminating',
      'not-ready',
    ]);
    b.upsertEndpointSlice(
      endpointSlice('e', [
        { ip: '10.0.0.2', ready: false, serving: true, terminating: true },
        { ip: '10.0.0.3', ready: false, serving: false, terminating: true },
      ]),
    );
    expect(eligible(port(b))).toEqual(['10.0.0.2:9000']);
  });

  it('internalTrafficPolicy Local uses only this node', () => {
    const b = new ServiceTableBuilder({ nodeName: 'n1' });
    b.upsertService(service('echo', { internalTrafficPolicy: 'Local' }));
    b.upsertEndpointSlice(
      endpointSlice('e', [
        { ip: '10.0.0.1', nodeName: 'n1' },
        { ip: '10.0.0.2', nodeName: 'n2' },
      ]),
    );
    expect(eligible(port(b))).toEqual(['10.0.0.1:9000']);
  });

  it('skips headless and ExternalName Services, and removes a Service that turns headless', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(endpointSlice('e', ['10.0.0.1']));
    expect(b.build().ports.size).toBe(1);
    const r = b.upsertService(service('echo', { clusterIP: 'None' }));
    expect(r).toMatchObject({
      applied: true,
      changed: true,
      skip: { reason: 'headless Service (no clusterIP)' },
    });
    expect(b.build().ports.size).toBe(0);
    b.upsertService(service('ext', { type: 'ExternalName' }));
    expect(b.build().ports.size).toBe(0);
  });

  it('keeps the last good version when an update is rejected whole', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo', { clusterIP: '10.96.0.10' }));
    const r = b.upsertService(service('echo', { clusterIP: 'bogus' }));
    expect(r.applied).toBe(false);
    expect(r.problems[0]?.field).toBe('spec.clusterIP');
    expect(port(b).clusterIP).toBe('10.96.0.10');
  });

  it('takes endpoints only from slices of the Service IP family', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(endpointSlice('v4', ['10.0.0.1']));
    b.upsertEndpointSlice(endpointSlice('v6', ['fd00::1'], { addressType: 'IPv6' }));
    expect(keys(port(b))).toEqual(['10.0.0.1:9000']);
  });

  it('moves an endpoint when a slice changes Service', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertService(service('other', { clusterIP: '10.96.0.11' }));
    b.upsertEndpointSlice(endpointSlice('s', ['10.0.0.1']));
    expect(keys(port(b))).toHaveLength(1);
    b.upsertEndpointSlice(endpointSlice('s', ['10.0.0.1'], { service: 'other' }));
    expect(keys(port(b))).toHaveLength(0);
    expect(keys(port(b, 'default/other:grpc'))).toHaveLength(1);
  });

  it('shares unchanged ServicePorts between builds and bumps the version only on change', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertService(service('other', { clusterIP: '10.96.0.11' }));
    b.upsertEndpointSlice(endpointSlice('e', ['10.0.0.1']));
    const t1 = b.build();
    expect(b.upsertEndpointSlice(endpointSlice('e', ['10.0.0.1'])).changed).toBe(false);
    expect(b.build()).toBe(t1);
    b.upsertEndpointSlice(endpointSlice('e', ['10.0.0.1', '10.0.0.2']));
    const t2 = b.build();
    expect(t2.version).toBe(t1.version + 1);
    expect(t2.ports.get('default/other:grpc')).toBe(t1.ports.get('default/other:grpc'));
    expect(t2.ports.get('default/echo:grpc')).not.toBe(t1.ports.get('default/echo:grpc'));
  });

  it('deletes Services and slices', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(endpointSlice('e', ['10.0.0.1']));
    b.build();
    expect(b.deleteEndpointSlice('default', 'e')).toBe(true);
    expect(keys(port(b))).toEqual([]);
    expect(b.deleteService('default', 'echo')).toBe(true);
    expect(b.build().ports.size).toBe(0);
    expect(b.deleteService('default', 'nope')).toBe(false);
  });

  it('names an unnamed port ns/name, as kube-proxy does', () => {
    const b = new ServiceTableBuilder();
    b.upsertService(service('plain', { ports: [{ port: 80 }] }));
    b.upsertEndpointSlice(
      endpointSlice('p', ['10.0.0.1'], { service: 'plain', ports: [{ name: '', port: 8080 }] }),
    );
    expect(keys(port(b, 'default/plain'))).toEqual(['10.0.0.1:8080']);
  });

  it('re-evaluates topology when the node zone changes', () => {
    const b = new ServiceTableBuilder({ nodeName: 'n1' });
    b.upsertService(service('echo'));
    b.upsertEndpointSlice(
      endpointSlice('e', [
        { ip: '10.0.0.1', forZones: ['a'] },
        { ip: '10.0.0.2', forZones: ['b'] },
      ]),
    );
    expect(eligible(port(b))).toHaveLength(2);
    b.setNodeZone('a');
    expect(eligible(port(b))).toEqual(['10.0.0.1:9000']);
  });
});
