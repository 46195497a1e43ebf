import { describe } from '../errors.js';
import type { DebugState } from '../metrics/state.js';
import { formatStatus } from './status-format.js';

/**
 * `kube-lc-proxy status`: fetches /debug/state from a running proxy and prints the balance
 * table. Resolves with the exit code: 0, or 1 when the proxy cannot be reached.
 */
export async function status(address: { host: string; port: number }): Promise<number> {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  const url = `http://${host}:${address.port}/debug/state`;
  let state: DebugState;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    state = (await res.json()) as DebugState;
  } catch (err) {
    process.stderr.write(
      `kube-lc-proxy: cannot read ${url}: ${describe(err)}\nIs the proxy running with --metrics-address ${address.host}:${address.port}?\n`,
    );
    return 1;
  }
  process.stdout.write(formatStatus(state));
  return 0;
}
