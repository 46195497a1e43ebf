import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ServiceTableBuilder } from '../../src/servicetable/builder.js';
import { TableSink } from '../../src/servicetable/table-sink.js';
import type { ServiceTable } from '../../src/servicetable/types.js';
import { endpointSlice, service } from '../support/objects.js';

// The table sink between a source and the Proxier: tables only after a synced commit, one build
// per burst of commits, handed on one at a time and in order; bad objects counted every time
// and logged once per distinct problem.

const KEY = 'default/echo:grpc';

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

interface Harness {
  readonly sink: TableSink;
  /** Every table handed on, in order. */
  readonly tables: ServiceTable[];
  readonly lines: Line[];
  /** How many `onTable` calls were running at once, at most. */
  maxInFlight: number;
  /** Tables built by the builder (changed or not). */
  builds: number;
}

/**
 * A sink on a real ServiceTableBuilder. `onTable` records the table, then runs `apply` (resolved
 * at once by default).
 */
function harness(apply: (t: ServiceTable) => Promise<void> = async () => {}): Harness {
  const lines: Line[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (l: string) => void lines.push(JSON.parse(l) as Line) },
  );
  let inFlight = 0;
  const builder = new ServiceTableBuilder();
  const build = builder.build.bind(builder);
  builder.build = () => {
    h.builds++;
    return build();
  };
  const h: Harness = {
    tables: [],
    lines,
    maxInFlight: 0,
    builds: 0,
    sink: new TableSink({
      builder,
      logger,
      onTable: async (t) => {
        h.tables.push(t);
        h.maxInFlight = Math.max(h.maxInFlight, ++inFlight);
        try {
          await apply(t);
        } finally {
          inFlight--;
        }
      },
    }),
  };
  return h;
}

const endpointsOf = (t: ServiceTable | undefined): string[] =>
  t?.ports.get(KEY)?.endpoints.map((e) => e.address) ?? [];

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const withMsg = (lines: readonly Line[], msg: string): Line[] => lines.filter((l) => l.msg === msg);

describe('TableSink', () => {
  it('hands on no table before a synced commit, then one per burst of commits', async () => {
    const h = harness();
    h.sink.upsertService(service('echo'));
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.1']));
    h.sink.commit(false);
    await h.sink.settled();
    expect(h.tables).toEqual([]);
    expect(h.sink.ready).toBe(false);

    expect(h.builds).toBe(0);

    // Three commits in one turn of the event loop: one build.
    h.sink.commit(true);
    h.sink.commit(false);
    h.sink.commit(true);
    await h.sink.settled();
    expect(h.builds).toBe(1);
    expect(h.tables).toHaveLength(1);
    expect(h.sink.tableApplies).toBe(1);
    expect(h.sink.ready).toBe(true);
    expect(endpointsOf(h.tables[0])).toEqual(['10.0.0.1']);

    // Once synced, a commit without `synced` still builds.
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.1', '10.0.0.2']));
    h.sink.commit(false);
    await h.sink.settled();
    expect(h.tables).toHaveLength(2);
    expect(endpointsOf(h.tables[1])).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(h.tables[1]?.version).toBeGreaterThan(h.tables[0]?.version ?? Infinity);
  });

  it('hands on nothing when a commit changed nothing', async () => {
    const h = harness();
    h.sink.upsertService(service('echo'));
    h.sink.commit(true);
    await h.sink.settled();
    // The same object again (a resync), then a commit.
    h.sink.upsertService(service('echo'));
    h.sink.commit(true);
    await h.sink.settled();
    expect(h.tables).toHaveLength(1);
    expect(h.sink.tableApplies).toBe(1);
  });

  it('waits for one table to be applied before it hands on the next, which has every change since', async () => {
    const pending: (() => void)[] = [];
    const h = harness(() => new Promise<void>((resolve) => pending.push(resolve)));
    h.sink.upsertService(service('echo'));
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.1']));
    h.sink.commit(true);
    await turns(5);
    expect(h.tables).toHaveLength(1);
    expect(h.sink.ready).toBe(false);

    // Two bursts while the first table is being applied.
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.1', '10.0.0.2']));
    h.sink.commit(false);
    await turns(5);
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.2', '10.0.0.3']));
    h.sink.commit(false);
    await turns(5);
    expect(h.tables).toHaveLength(1);
    let settled = false;
    void h.sink.settled().then(() => (settled = true));

    // Each table is handed on only once the one before is applied.
    while (pending.length > 0) {
      const n = h.tables.length;
      pending.shift()?.();
      await turns(5);
      expect(h.tables.length).toBeLessThanOrEqual(n + 1);
    }
    await h.sink.settled();
    expect(settled).toBe(true);
    expect(h.maxInFlight).toBe(1);
    expect(h.sink.ready).toBe(true);
    expect(endpointsOf(h.tables.at(-1))).toEqual(['10.0.0.2', '10.0.0.3']);
    // Builds are in order: each table is newer than the one before.
    const versions = h.tables.map((t) => t.version);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it('logs a failed apply and goes on with the next table', async () => {
    let calls = 0;
    const h = harness(async () => {
      if (calls++ === 0) throw new Error('boom');
    });
    h.sink.upsertService(service('echo'));
    h.sink.commit(true);
    await h.sink.settled();
    expect(withMsg(h.lines, 'applying the service table failed')).toHaveLength(1);
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.9']));
    h.sink.commit(false);
    await h.sink.settled();
    expect(h.tables).toHaveLength(2);
    expect(endpointsOf(h.tables[1])).toEqual(['10.0.0.9']);
    expect(withMsg(h.lines, 'applying the service table failed')).toHaveLength(1);
  });

  it('forwards deletions to the table', async () => {
    const h = harness();
    h.sink.upsertService(service('echo'));
    h.sink.upsertService(service('other', { clusterIP: '10.96.0.11' }));
    h.sink.upsertEndpointSlice(endpointSlice('echo-1', ['10.0.0.1']));
    h.sink.commit(true);
    await h.sink.settled();
    expect([...(h.tables[0]?.ports.keys() ?? [])].sort()).toEqual([KEY, 'default/other:grpc']);
    h.sink.deleteEndpointSlice('default', 'echo-1');
    h.sink.commit(false);
    await h.sink.settled();
    expect(h.tables[1]?.ports.has(KEY)).toBe(true);
    expect(endpointsOf(h.tables[1])).toEqual([]);
    h.sink.deleteService('default', 'other');
    // Unknown keys are ignored.
    h.sink.deleteService('default', 'never-was');
    h.sink.deleteEndpointSlice('default', 'never-was');
    h.sink.commit(false);
    await h.sink.settled();
    expect([...(h.tables[2]?.ports.keys() ?? [])]).toEqual([KEY]);
  });

  it('counts every rejected object by kind, logs each distinct problem once, and keeps the last good version', async () => {
    const h = harness();
    h.sink.upsertService(service('echo'));
    h.sink.commit(true);
    await h.sink.settled();
    const bad = service('echo', { clusterIP: 'not-an-ip' });
    for (let i = 0; i < 3; i++) h.sink.upsertService(bad);
    h.sink.upsertService(service('echo', { clusterIP: 'also-bad' }));
    const badSlice = { ...endpointSlice('echo-1', ['10.0.0.1']), addressType: 'IPX' };
    h.sink.upsertEndpointSlice(badSlice);
    h.sink.upsertEndpointSlice(badSlice);
    h.sink.commit(false);
    await h.sink.settled();
    expect(Object.fromEntries(h.sink.rejectedObjects)).toEqual({ Service: 4, EndpointSlice: 2 });
    const rejected = withMsg(h.lines, 'bad object rejected; keeping the last good version');
    // Two distinct Service problems (two values) and one EndpointSlice problem.
    expect(rejected).toHaveLength(3);
    expect(rejected.every((l) => l.level === 40)).toBe(true);
    expect(rejected.map((l) => l.object)).toEqual([
      'Service default/echo',
      'Service default/echo',
      'EndpointSlice default/echo-1',
    ]);
    // The last good version is still served: no new table (nothing changed).
    expect(h.tables).toHaveLength(1);
    expect(h.tables[0]?.ports.get(KEY)?.clusterIP).toBe('10.96.0.10');
  });

  it('logs a bad part of an object once, applies the rest, and counts the object', async () => {
    const h = harness();
    const partlyBad = service('echo', {
      ports: [
        { name: 'grpc', port: 8080 },
        { name: 'bad', port: 70000 },
      ],
    });
    h.sink.upsertService(partlyBad);
    h.sink.upsertService(partlyBad);
    h.sink.commit(true);
    await h.sink.settled();
    expect(h.sink.rejectedObjects.get('Service')).toBe(2);
    const skipped = withMsg(h.lines, 'bad part of object skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ applied: true });
    expect([...(h.tables[0]?.ports.keys() ?? [])]).toEqual([KEY]);
  });

  it('logs a skipped object and an ignored part once each, and counts neither as rejected', async () => {
    const h = harness();
    const headless = service('headless', { clusterIP: 'None' });
    const withUdp = service('echo', {
      ports: [
        { name: 'grpc', port: 8080 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    });
    for (let i = 0; i < 3; i++) {
      h.sink.upsertService(headless);
      h.sink.upsertService(withUdp);
    }
    h.sink.commit(true);
    await h.sink.settled();
    expect(withMsg(h.lines, 'object skipped')).toHaveLength(1);
    expect(withMsg(h.lines, 'part of object ignored')).toHaveLength(1);
    expect(h.sink.rejectedObjects.size).toBe(0);
    expect([...(h.tables[0]?.ports.keys() ?? [])]).toEqual([KEY]);
  });

  it('remembers a bounded number of logged problems', async () => {
    const h = harness();
    const bad = (i: number) => service(`bad-${i}`, { clusterIP: 'not-an-ip' });
    // One more distinct problem than the sink remembers.
    const distinct = 10_001;
    for (let i = 0; i < distinct; i++) h.sink.upsertService(bad(i));
    const logged = withMsg(h.lines, 'bad object rejected; keeping the last good version').length;
    expect(logged).toBe(distinct);
    // The first problem was forgotten to make room: it is logged again, and only once more.
    h.sink.upsertService(bad(0));
    h.sink.upsertService(bad(0));
    const after = withMsg(h.lines, 'bad object rejected; keeping the last good version');
    expect(after).toHaveLength(distinct + 1);
    expect(after.at(-1)?.object).toBe('Service default/bad-0');
    expect(h.sink.rejectedObjects.get('Service')).toBe(distinct + 2);
  });
});
