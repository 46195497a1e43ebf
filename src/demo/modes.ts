/**
 * The three ways the demo balances the same clients, and where each one lives on
 * 127.0.100.0/24. Pure.
 */

/** How the clients of a mode reach the backends. */
export type ModeName = 'random' | 'node-local' | 'cluster';

export const MODE_NAMES: readonly ModeName[] = ['random', 'node-local', 'cluster'];

/** Column titles of the live view and the report. */
export const MODE_TITLES: Readonly<Record<ModeName, string>> = {
  random: 'random (kube-proxy)',
  'node-local': 'node-local least conn',
  cluster: 'cluster view',
};

/** At most this many nodes per mode (addresses are per mode). */
export const MAX_NODES = 20;
/** At most this many backends per mode, the rolling update's replacement included. */
export const MAX_BACKENDS = 19;

const index = (m: ModeName): number => MODE_NAMES.indexOf(m);

/** Backend `n` (1-based) of mode `m`: 127.0.100.1-19, .21-39, .41-59. */
export function backendAddress(m: ModeName, n: number): string {
  return `127.0.100.${index(m) * 20 + n}`;
}

/** Node `k` (1-based) of mode `m`, its ClusterIP and metrics host: .101-120, .131-150, .161-180. */
export function nodeAddress(m: ModeName, k: number): string {
  return `127.0.100.${100 + index(m) * 30 + k}`;
}

/** Parses `--modes`: a comma-separated subset of MODE_NAMES, in the canonical order. */
export function parseModes(text: string): ModeName[] | string {
  const asked = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = asked.filter((s) => !(MODE_NAMES as readonly string[]).includes(s));
  if (bad.length > 0) return `unknown mode ${bad.join(', ')} (known: ${MODE_NAMES.join(', ')})`;
  if (asked.length === 0) return 'name at least one mode';
  return MODE_NAMES.filter((m) => asked.includes(m));
}

/** How many clients node `k` (0-based) of `nodes` gets when `clients` are spread evenly. */
export function clientsOnNode(k: number, nodes: number, clients: number): number {
  return Math.floor(clients / nodes) + (k < clients % nodes ? 1 : 0);
}
