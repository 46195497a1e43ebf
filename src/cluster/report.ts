/**
 * The report one proxy sends its peers: how many connections it holds to each endpoint of each
 * Service port. Service ports are named by their ServicePortName key (`namespace/name:port`) and
 * endpoints by `address:port`, never by a node-local listener address: two nodes may serve the
 * same Service on different local addresses. Pure: parsing and building only.
 */

/** Counts of one endpoint on one node: `[active, draining]`. */
export type EndpointCounts = readonly [active: number, draining: number];

/** One node's report. Endpoints with no connection are left out (reports stay small). */
export interface NodeReport {
  /** The sender's `--node-name`. */
  readonly node: string;
  /** Increases with every report of one process; for display and debugging. */
  readonly seq: number;
  /** Service port key → endpoint key → counts. A Service port with no connection is listed with `{}`. */
  readonly ports: Readonly<Record<string, Readonly<Record<string, EndpointCounts>>>>;
}

/** Bounds on what a peer may send; anything beyond is refused as a bad report. */
export const REPORT_LIMITS = {
  nodeNameLength: 253,
  servicePorts: 20_000,
  endpointsPerPort: 5_000,
  keyLength: 400,
  count: 10_000_000,
} as const;

/** A report that cannot be used; `reason` is a closed set (a metric label). */
export class BadReport extends Error {
  readonly reason: 'json' | 'shape' | 'limit';
  constructor(reason: 'json' | 'shape' | 'limit', message: string) {
    super(message);
    this.reason = reason;
  }
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= REPORT_LIMITS.count;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks a report from a peer. Throws BadReport; never returns a partial report. */
export function parseReport(text: string): NodeReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BadReport('json', `not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw)) throw new BadReport('shape', 'not an object');
  const { node, seq, ports } = raw;
  if (typeof node !== 'string' || node === '' || node.length > REPORT_LIMITS.nodeNameLength)
    throw new BadReport('shape', 'node: expected a non-empty name');
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
    throw new BadReport('shape', 'seq: expected a whole number');
  if (!isRecord(ports)) throw new BadReport('shape', 'ports: expected an object');
  const portKeys = Object.keys(ports);
  if (portKeys.length > REPORT_LIMITS.servicePorts)
    throw new BadReport('limit', `ports: more than ${REPORT_LIMITS.servicePorts}`);
  const out: Record<string, Record<string, EndpointCounts>> = {};
  for (const sp of portKeys) {
    const eps = ports[sp];
    if (sp.length > REPORT_LIMITS.keyLength || !isRecord(eps))
      throw new BadReport('shape', `ports[${JSON.stringify(sp.slice(0, 80))}]: bad entry`);
    const epKeys = Object.keys(eps);
    if (epKeys.length > REPORT_LIMITS.endpointsPerPort)
      throw new BadReport(
        'limit',
        `ports[${sp}]: more than ${REPORT_LIMITS.endpointsPerPort} endpoints`,
      );
    const row: Record<string, EndpointCounts> = {};
    for (const ep of epKeys) {
      const c = eps[ep];
      if (
        ep.length > REPORT_LIMITS.keyLength ||
        !Array.isArray(c) ||
        c.length !== 2 ||
        !isCount(c[0]) ||
        !isCount(c[1])
      )
        throw new BadReport(
          'shape',
          `ports[${sp}][${JSON.stringify(ep.slice(0, 80))}]: expected [active, draining]`,
        );
      row[ep] = [c[0], c[1]];
    }
    out[sp] = row;
  }
  return { node, seq, ports: out };
}

/** The live counts of one Service port, as the balancer holds them. */
export interface LocalPortCounts {
  readonly servicePort: string;
  readonly endpoints: Iterable<{
    readonly key: string;
    readonly active: number;
    readonly draining: number;
  }>;
}

/** Builds this node's report from its live counts (endpoints at zero are left out). */
export function buildReport(
  node: string,
  seq: number,
  ports: Iterable<LocalPortCounts>,
): NodeReport {
  const out: Record<string, Record<string, EndpointCounts>> = {};
  for (const p of ports) {
    const row = (out[p.servicePort] ??= {});
    for (const ep of p.endpoints) {
      if (ep.active === 0 && ep.draining === 0) continue;
      const cur = row[ep.key];
      // A retired Service port and its successor share a key: add them up.
      row[ep.key] =
        cur === undefined ? [ep.active, ep.draining] : [cur[0] + ep.active, cur[1] + ep.draining];
    }
  }
  return { node, seq, ports: out };
}
