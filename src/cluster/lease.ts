/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
 * (@kubernetes/client-node 2.x has no elector): the holder renews every retry period and counts
 * as leader only while its last successful renewal is younger than the renew deadline; another
 * candidate takes the Lease only after the record it observed has not changed for a whole lease
 * duration, measured on its own clock (clocks of different nodes are never compared). A Lease
 * does not fence: two holders can briefly overlap, which the cluster view tolerates.
 *
 * Unlike client-go, a candidate waits an extra delay drawn from a hash of its name before taking
 * an expired Lease, and re-reads it first: at 1,000 nodes the first one takes it and the others
 * see a fresh holder, instead of 1,000 conflicting writes. Pure; the shell (elector.ts) does the
 * requests.
 */

/** client-go's defaults (component-base config/v1alpha1). */
export const LEASE_DURATION_MS = 15_000;
export const RENEW_DEADLINE_MS = 10_000;
export const RETRY_PERIOD_MS = 2_000;
/** Longest extra wait before taking an expired Lease (spread by a hash of the node name). */
export const TAKE_SPREAD_MS = 10_000;

/** The fields of a Lease the election reads. */
export interface LeaseRecord {
  readonly holder: string;
  readonly resourceVersion: string;
  /** renewTime as the API server stores it (compared as text only, never as a clock). */
  readonly renewTime: string;
  readonly transitions: number;
}

/** What a candidate remembers between reads. */
export interface ElectionMemory {
  /** The record last read, and when (this node's clock) it was first seen in that form. */
  readonly observed: LeaseRecord | undefined;
  readonly observedAt: number;
}

/** What to do after reading the Lease (`undefined` record: it does not exist). */
export type ElectionStep =
  | { readonly kind: 'create' }
  | { readonly kind: 'renew'; readonly resourceVersion: string; readonly transitions: number }
  | { readonly kind: 'take'; readonly resourceVersion: string; readonly transitions: number }
  | { readonly kind: 'follow'; readonly holder: string };

function same(a: LeaseRecord | undefined, b: LeaseRecord | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.holder === b.holder &&
    a.renewTime === b.renewTime &&
    a.transitions === b.transitions &&
    a.resourceVersion === b.resourceVersion
  );
}

/**
 * Decides the next step from the record just read. Returns the step and the memory to keep.
 * `takeDelayMs` is this node's extra wait before taking an expired Lease.
 */
export function electionStep(
  self: string,
  record: LeaseRecord | undefined,
  memory: ElectionMemory,
  now: number,
  takeDelayMs: number,
  leaseDurationMs = LEASE_DURATION_MS,
): { step: ElectionStep; memory: ElectionMemory } {
  if (record === undefined)
    return { step: { kind: 'create' }, memory: { observed: undefined, observedAt: now } };
  const mem = same(record, memory.observed) ? memory : { observed: record, observedAt: now };
  if (record.holder === self) {
    return {
      step: {
        kind: 'renew',
        resourceVersion: record.resourceVersion,
        transitions: record.transitions,
      },
      memory: mem,
    };
  }
  const expired = record.holder === '' || now >= mem.observedAt + leaseDurationMs + takeDelayMs;
  if (expired) {
    return {
      step: {
        kind: 'take',
        resourceVersion: record.resourceVersion,
        transitions: record.transitions + 1,
      },
      memory: mem,
    };
  }
  return { step: { kind: 'follow', holder: record.holder }, memory: mem };
}

/** The holder identity: the node name and the address its peers reach it at. */
export function holderIdentity(node: string, address: string): string {
  return `${node}@${address}`;
}

/** Parses a holder identity; undefined when it is not one of ours. */
export function parseHolder(
  identity: string,
): { node: string; host: string; port: number } | undefined {
  const at = identity.lastIndexOf('@');
  if (at <= 0) return undefined;
  const node = identity.slice(0, at);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(identity.slice(at + 1));
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { node, host: (m[1] ?? m[2]) as string, port };
}
