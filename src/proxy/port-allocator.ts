/**
 * Stable listener ports for intercept `iptables` (pure). A Service port keeps its proxy port for
 * as long as the REDIRECT rule that names it exists: a starting proxy adopts the ports of the
 * rules already in place (iptables/adopt.ts), and only Service ports without a rule get a new
 * port here, from `--proxy-port-range`.
 *
 * A new port is chosen by a hash of the Service port's name, then the next free one: two
 * processes that run side by side during an upgrade (DaemonSet maxSurge) and both see a new
 * Service pick the same port for it, so their listeners share it (SO_REUSEPORT) instead of each
 * redirecting to its own.
 */

/** An inclusive range of TCP ports. */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/**
 * Default of `--proxy-port-range`: above the Linux ephemeral range (32768-60999, so the kernel
 * never hands these out for outgoing connections with default settings) and far from the
 * NodePort range (30000-32767). 4536 ports: one per proxied Service port on a node.
 */
export const DEFAULT_PROXY_PORT_RANGE: PortRange = { first: 61000, last: 65535 };

/** Number of ports in `range`. */
export function rangeSize(range: PortRange): number {
  return range.last - range.first + 1;
}

/** True when `port` lies in `range`. */
export function inRange(range: PortRange, port: number): boolean {
  return port >= range.first && port <= range.last;
}

/** FNV-1a over the UTF-16 code units of `text`: stable across processes and versions. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The port `key` gets when it is free: the same in every process for the same range. */
export function preferredPort(key: string, range: PortRange): number {
  return range.first + (fnv1a(key) % rangeSize(range));
}

/** What `allocatePort` asks of a set of ports: a Set, or a Map keyed by port. */
export interface PortSet {
  has(port: number): boolean;
}

/**
 * The first port of `range`, from `preferredPort(key)` on and wrapping around, that is in
 * neither `taken` (ports other Service ports hold) nor `avoid` (ports that failed to bind).
 * `undefined` when the range is full. Never mutates its arguments.
 */
export function allocatePort(
  key: string,
  range: PortRange,
  taken: PortSet,
  avoid: PortSet = new Set(),
): number | undefined {
  const size = rangeSize(range);
  const start = preferredPort(key, range) - range.first;
  for (let i = 0; i < size; i++) {
    const port = range.first + ((start + i) % size);
    if (!taken.has(port) && !avoid.has(port)) return port;
  }
  return undefined;
}
