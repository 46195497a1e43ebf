import { describe, expect, it } from 'vitest';
import type { EndpointChange } from '../../src/balancer/least-conn.js';
import { ServicePortProxy } from '../../src/proxy/service-port-proxy.js';
import type { Endpoint, EndpointState, ServicePort } from '../../src/servicetable/types.js';
import { tableEndpoint } from '../support/table-endpoint.js';

// An idle Service port has no balancer until a connection needs one (issue 13). What it reports
// meanwhile (changes for logs and drains, rows for /debug/state and metrics) must be what a
// balancer would have reported.

function endpoint(ip: string, state: EndpointState): Endpoint {
  return tableEndpoint(ip, 9000, state);
}

function port(endpoints: Endpoint[]): ServicePort {
  return {
    name: { namespace: 'default', name: 'echo', port: 'grpc', protocol: 'TCP' },
    key: 'default/echo:grpc',
    clusterIP: '127.0.0.50',
    family: 'IPv4',
    port: 8080,
    internalTrafficPolicy: 'Cluster',
    endpoints,
  };
}

const proxy = (sp: ServicePort) =>
  new ServicePortProxy(sp, {
    connectTimeoutMs: 1000,
    maxConnectAttempts: 3,
    slowStartWindowMs: 0,
    h2: undefined,
    now: () => 0,
    random: () => 0,
  });

const show = (changes: readonly EndpointChange[]) =>
  changes
    .map((c) => `${c.stats.key} ${c.previous ?? 'new'}->${c.current}`)
    .sort()
    .join(', ');

const rows = (p: ServicePortProxy) =>
  [...p.endpointStats()]
    .map((e) => `${e.key} ${e.status} ${e.eligible} ${e.active}`)
    .sort()
    .join(', ');

describe('an idle Service port without a balancer', () => {
  const steps: Endpoint[][] = [
    [endpoint('10.0.0.2', 'ready'), endpoint('10.0.0.3', 'ready')],
    [endpoint('10.0.0.1', 'ready'), endpoint('10.0.0.2', 'terminating')],
    [endpoint('10.0.0.1', 'not-ready'), endpoint('10.0.0.4', 'ready')],
    [],
    [endpoint('10.0.0.1', 'ready')],
  ];

  it.each(steps.slice(1).map((_, i) => [i + 1]))(
    'reports the changes and rows a balancer reports, step %i',
    (upTo) => {
      const first = port(steps[0] as Endpoint[]);
      const idle = proxy(first);
      const withBalancer = proxy(first);
      expect(withBalancer.balancer.endpoints().next().done).toBe(false);
      for (const eps of steps.slice(1, upTo + 1)) {
        const next = port(eps);
        const a = idle.update(next);
        const b = withBalancer.update(next);
        // Every step of the table changes something: the comparison is never of two empties.
        expect(show(a)).not.toBe('');
        expect(show(a)).toBe(show(b));
        expect(rows(idle)).toBe(rows(withBalancer));
      }
    },
  );

  it('makes its balancer with the current endpoints when one is needed', () => {
    const p = proxy(port([endpoint('10.0.0.2', 'ready')]));
    p.update(port([endpoint('10.0.0.2', 'ready'), endpoint('10.0.0.3', 'not-ready')]));
    expect([...p.balancer.endpoints()].map((e) => `${e.key} ${e.status}`)).toEqual([
      '10.0.0.2:9000 ready',
      '10.0.0.3:9000 not-ready',
    ]);
    expect(p.balancer.pick()?.key).toBe('10.0.0.2:9000');
    expect(p.used).toBe(false);
  });
});
