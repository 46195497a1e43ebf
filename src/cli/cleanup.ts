import { describe } from '../errors.js';
import { cleanup } from '../iptables/apply.js';
import { createLogger } from '../log.js';

/**
 * `kube-lc-proxy cleanup`: removes the KUBE-LC-SERVICES chain and the jumps to it from the nat
 * table, and nothing else. Run it after the proxy has stopped (a running proxy puts the rules
 * back at its next sync). Resolves with the exit code: 0, or 1 when iptables failed.
 */
export async function cleanupCommand(): Promise<number> {
  const logger = createLogger('info');
  try {
    const removed = await cleanup({ logger });
    process.stderr.write(
      removed
        ? 'kube-lc-proxy: removed its iptables chain and jumps\n'
        : 'kube-lc-proxy: nothing to remove\n',
    );
    return 0;
  } catch (err) {
    process.stderr.write(`kube-lc-proxy: cleanup failed: ${describe(err)}\n`);
    return 1;
  }
}
