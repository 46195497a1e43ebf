import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log.js';

/**
 * `net.ipv4.tcp_migrate_req` (Linux 5.14+, per network namespace): when a listener of a
 * SO_REUSEPORT group closes, connections already in its accept queue move to another listener
 * of the group instead of being reset. During an upgrade the old proxy closes its listeners
 * while the new one listens on the same ports: with this on, no client that connected in that
 * moment is reset.
 */
export const TCP_MIGRATE_REQ_PATH = '/proc/sys/net/ipv4/tcp_migrate_req';

/** What `enableTcpMigrateReq` found or did; `enabled` is true when the sysctl is 1 now. */
export interface SysctlOutcome {
  readonly enabled: boolean;
  /** `set`: we wrote 1; `already`: it was 1; `skipped`: told not to touch it; `failed`. */
  readonly how: 'set' | 'already' | 'skipped' | 'failed';
}

/**
 * Sets the sysctl to 1 where permitted (root in the node's network namespace with a writable
 * /proc/sys), and logs once when it is not on and could not be set: a container without
 * privileges, an older kernel. Never throws.
 */
export async function enableTcpMigrateReq(
  logger: Logger,
  opts: { set: boolean; path?: string },
): Promise<SysctlOutcome> {
  const path = opts.path ?? TCP_MIGRATE_REQ_PATH;
  let current: string | undefined;
  try {
    current = (await readFile(path, 'utf8')).trim();
  } catch {
    current = undefined;
  }
  if (current === '1') return { enabled: true, how: 'already' };
  if (!opts.set) {
    logger.warn(
      { sysctl: 'net.ipv4.tcp_migrate_req', value: current ?? 'unknown' },
      'tcp_migrate_req is off and left so: connections queued on a closing listener may be reset during an upgrade',
    );
    return { enabled: false, how: 'skipped' };
  }
  try {
    await writeFile(path, '1\n');
    logger.info({ sysctl: 'net.ipv4.tcp_migrate_req', value: 1 }, 'sysctl set');
    return { enabled: true, how: 'set' };
  } catch (err) {
    logger.warn(
      {
        sysctl: 'net.ipv4.tcp_migrate_req',
        value: current ?? 'unknown',
        err: (err as NodeJS.ErrnoException).code ?? String(err),
      },
      'cannot set tcp_migrate_req: connections queued on a closing listener may be reset during an upgrade',
    );
    return { enabled: false, how: 'failed' };
  }
}
