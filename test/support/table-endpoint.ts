import type { Endpoint, EndpointState } from '../../src/servicetable/types.js';

/**
 * A service-table Endpoint for tests, as the table builder makes it: `state` sets ready, serving
 * and terminating; no node, zone, hints or target. Eligible (may take new connections) by default
 * when ready.
 */
export function tableEndpoint(
  address: string,
  port = 9000,
  state: EndpointState = 'ready',
  eligible = state === 'ready',
): Endpoint {
  return {
    key: `${address}:${port}`,
    address,
    port,
    ready: state === 'ready',
    serving: state !== 'not-ready',
    terminating: state === 'terminating',
    state,
    nodeName: undefined,
    zone: undefined,
    forZones: [],
    forNodes: [],
    targetRef: undefined,
    eligible,
  };
}
