import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';

/** The open-file limits of a process; `Infinity` for unlimited. */
export interface FileLimits {
  readonly soft: number;
  readonly hard: number;
}

/** Reads the `Max open files` line of a /proc/PID/limits text. Undefined if absent. */
export function parseFileLimits(text: string): FileLimits | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (m === null) return undefined;
  const num = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
  const soft = num(m[1] as string);
  const hard = num(m[2] as string);
  return Number.isNaN(soft) || Number.isNaN(hard) ? undefined : { soft, hard };
}

async function readLimits(): Promise<FileLimits | undefined> {
  try {
    return parseFileLimits(await readFile('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Raises the soft open-file limit to the hard one, as HAProxy and nginx do at start, and logs
 * both: every proxied connection holds two descriptors, and the soft limit is often 1024.
 * Node.js usually did this already when it started (it raises RLIMIT_NOFILE on POSIX); when it
 * did not, `prlimit` (util-linux, in the image) does it, since Node has no setrlimit API.
 * Never throws: a limit it cannot raise is logged as a warning.
 */
export async function raiseFileLimit(
  logger: Logger,
  run: (file: string, args: string[]) => Promise<void> = execFileAsync,
): Promise<FileLimits | undefined> {
  const before = await readLimits();
  if (before === undefined) {
    logger.info('open-file limit unknown (no /proc/self/limits)');
    return undefined;
  }
  let after = before;
  if (before.soft < before.hard && Number.isFinite(before.hard)) {
    try {
      await run('prlimit', [`--pid=${process.pid}`, `--nofile=${before.hard}:${before.hard}`]);
      after = (await readLimits()) ?? before;
    } catch (err) {
      logger.warn(
        { soft: before.soft, hard: before.hard, err: describe(err) },
        'cannot raise the soft open-file limit to the hard one (prlimit); connections past the soft limit will be shed',
      );
      return before;
    }
  }
  logger.info(
    { soft: after.soft, hard: after.hard, softBefore: before.soft },
    'open-file limit (each proxied connection holds two descriptors)',
  );
  return after;
}

function execFileAsync(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5_000 }, (err) => (err ? reject(err) : resolve()));
  });
}
