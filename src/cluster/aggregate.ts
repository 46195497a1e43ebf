import type { ClusterRebalanceAll } from '../drain/cluster-rebalance.js';
import { BadReport, REPORT_LIMITS } from './report.js';

/**
 * The aggregator's side of the cluster view (`--source k8s`): followers post their report and
 * get back their part of the view, not every node's report, so an answer stays the size of the
 * follower's own Service ports. Pure.
 */

/** The view of one Service port after a round: every node's counts and the plan for all. */
export interface AggregatePort {
  /** node → endpoint → active connections (the aggregator's own live counts included). */
  readonly counts: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** endpoint → active connections over every node. */
  readonly totals: ReadonlyMap<string, number>;
  readonly plan: ClusterRebalanceAll;
  /** node → the signed timestamp of the report the plan used (the follower's own clock). */
  readonly basis: ReadonlyMap<string, number>;
}

/** A follower's part of one Service port. */
export interface AnswerPort {
  /** Active connections of the other nodes, per endpoint. */
  readonly others: Readonly<Record<string, number>>;
  /** Nodes in the view of this Service port, the follower included. */
  readonly nodes: number;
  /** The follower's share of the rebalance, per endpoint. */
  readonly drains: Readonly<Record<string, number>>;
  /** Where the follower's next connections should go. */
  readonly destinations: readonly string[];
  readonly skew: number;
  /**
   * Timestamp of the follower's report the plan used (0: none). A follower that drained after
   * sending that report ignores the plan: it does not reflect its drains yet.
   */
  readonly basis: number;
}

/** The answer of the aggregator to a follower's report. */
export interface AggregateAnswer {
  readonly aggregator: string;
  readonly seq: number;
  readonly ports: Readonly<Record<string, AnswerPort>>;
}

/** The follower's part of the view, for the Service ports it reported. */
export function answerFor(
  follower: string,
  aggregator: string,
  seq: number,
  cache: ReadonlyMap<string, AggregatePort>,
  servicePorts: Iterable<string>,
): AggregateAnswer {
  const ports: Record<string, AnswerPort> = {};
  for (const sp of servicePorts) {
    const c = cache.get(sp);
    if (c === undefined) continue;
    const own = c.counts.get(follower);
    const others: Record<string, number> = {};
    for (const [ep, n] of c.totals) {
      const o = n - (own?.get(ep) ?? 0);
      if (o > 0) others[ep] = o;
    }
    const part = c.plan.nodes.get(follower);
    ports[sp] = {
      others,
      nodes: c.counts.size + (own === undefined ? 1 : 0),
      drains: Object.fromEntries(part?.drains ?? []),
      destinations: [...(part?.destinations ?? [])],
      skew: c.plan.skew,
      basis: c.basis.get(follower) ?? 0,
    };
  }
  return { aggregator, seq, ports };
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= REPORT_LIMITS.count;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function counts(v: unknown, what: string): Record<string, number> {
  if (!isRecord(v)) throw new BadReport('shape', `${what}: expected an object`);
  const keys = Object.keys(v);
  if (keys.length > REPORT_LIMITS.endpointsPerPort)
    throw new BadReport('limit', `${what}: too many`);
  for (const k of keys) if (!isCount(v[k])) throw new BadReport('shape', `${what}: bad count`);
  return v as Record<string, number>;
}

/** Parses and checks an aggregator's answer. Throws BadReport. */
export function parseAnswer(text: string): AggregateAnswer {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BadReport('json', `not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw) || typeof raw.aggregator !== 'string' || !isRecord(raw.ports))
    throw new BadReport('shape', 'not an aggregator answer');
  const seq = raw.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) throw new BadReport('shape', 'seq');
  const ports: Record<string, AnswerPort> = {};
  const entries = Object.entries(raw.ports);
  if (entries.length > REPORT_LIMITS.servicePorts) throw new BadReport('limit', 'too many ports');
  for (const [sp, p] of entries) {
    if (!isRecord(p)) throw new BadReport('shape', `ports[${sp}]`);
    const dest = p.destinations;
    if (
      !Array.isArray(dest) ||
      dest.length > REPORT_LIMITS.count ||
      !dest.every((d) => typeof d === 'string' && d.length <= REPORT_LIMITS.keyLength)
    )
      throw new BadReport('shape', `ports[${sp}].destinations`);
    if (!isCount(p.nodes) || typeof p.skew !== 'number' || !Number.isFinite(p.skew))
      throw new BadReport('shape', `ports[${sp}]`);
    if (typeof p.basis !== 'number' || !Number.isSafeInteger(p.basis) || p.basis < 0)
      throw new BadReport('shape', `ports[${sp}].basis`);
    ports[sp] = {
      others: counts(p.others, `ports[${sp}].others`),
      drains: counts(p.drains, `ports[${sp}].drains`),
      destinations: dest as string[],
      nodes: p.nodes,
      skew: p.skew,
      basis: p.basis,
    };
  }
  return { aggregator: raw.aggregator, seq, ports };
}
