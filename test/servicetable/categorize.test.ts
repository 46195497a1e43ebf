import { describe, expect, it } from 'vitest';
import {
  categorizeEndpoints,
  topologyModeFromHints,
  type Categorizable,
} from '../../src/servicetable/categorize.js';

function ep(o: Partial<Categorizable> = {}): Categorizable {
  return {
    ready: true,
    serving: true,
    terminating: false,
    nodeName: undefined,
    forZones: [],
    forNodes: [],
    ...o,
  };
}
const term = (o: Partial<Categorizable> = {}) =>
  ep({ ready: false, serving: true, terminating: true, ...o });
const node = { nodeName: 'n1', zone: 'a' };

describe('categorizeEndpoints', () => {
  it.each<[string, Categorizable[], 'Cluster' | 'Local', boolean[]]>([
    ['all ready', [ep(), ep()], 'Cluster', [true, true]],
    ['ready beats terminating', [ep(), term()], 'Cluster', [true, false]],
    [
      'terminating fallback when none ready',
      [term(), term({ serving: false })],
      'Cluster',
      [true, false],
    ],
    ['not-ready never', [ep({ ready: false, serving: false })], 'Cluster', [false]],
    ['zone hints', [ep({ forZones: ['a'] }), ep({ forZones: ['b'] })], 'Cluster', [true, false]],
    [
      'zone hints ignored unless all have them',
      [ep({ forZones: ['a'] }), ep()],
      'Cluster',
      [true, true],
    ],
    [
      'zone hints ignored when none is for us',
      [ep({ forZones: ['b'] }), ep({ forZones: ['c'] })],
      'Cluster',
      [true, true],
    ],
    [
      'node hints before zone hints',
      [ep({ forNodes: ['n1'], forZones: ['b'] }), ep({ forNodes: ['n2'], forZones: ['a'] })],
      'Cluster',
      [true, false],
    ],
    [
      'fallback ignores topology',
      [term({ forZones: ['b'] }), ep({ ready: false, serving: false })],
      'Cluster',
      [true, false],
    ],
    [
      'Local: local ready',
      [ep({ nodeName: 'n1' }), ep({ nodeName: 'n2' })],
      'Local',
      [true, false],
    ],
    [
      'Local: local terminating fallback',
      [term({ nodeName: 'n1' }), ep({ nodeName: 'n2' })],
      'Local',
      [true, false],
    ],
    ['Local: no remote fallback', [ep({ nodeName: 'n2' })], 'Local', [false]],
  ])('%s', (_n, eps, policy, want) => {
    expect(categorizeEndpoints(eps, policy, node)).toEqual(want);
  });

  it('treats no endpoint as local when the node name is unknown', () => {
    expect(
      categorizeEndpoints([ep({ nodeName: 'n1' })], 'Local', {
        nodeName: undefined,
        zone: undefined,
      }),
    ).toEqual([false]);
  });
});

describe('topologyModeFromHints', () => {
  it('judges hints over ready endpoints only', () => {
    expect(topologyModeFromHints([ep({ forZones: ['a'] }), term()], node)).toBe('PreferSameZone');
  });
});
