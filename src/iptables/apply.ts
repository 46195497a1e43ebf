/**
 * The shell around the pure planners: runs `iptables-save -t nat` and
 * `iptables-restore --noflush` as child processes, the restore input on stdin and never through
 * a shell, so no Service name or comment can become a shell word. Everything that touches the
 * machine (spawn function, binary paths, logger) comes in through options so tests can fake it
 * or point it into a network namespace.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { IptablesError } from '../errors.js';
import { planCleanup, planSync } from './plan.js';
import { planFirewallCleanup, planFirewallSync, type FirewallRange } from './firewall.js';
import { selectRules, type RedirectRule, type SkippedRule } from './render.js';

/** The parts of a child process this module uses; `node:child_process` `spawn` returns more. */
export interface SpawnedProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  once(event: 'error', listener: (err: Error) => void): this;
  once(
    event: 'close',
    listener: (code: number | null, signal: NodeJS.Signals | null) => void,
  ): this;
  kill(signal?: NodeJS.Signals): boolean;
}

/** Starts `command` with `args` (no shell). `node:child_process` `spawn` fits this type. */
export type SpawnFn = (
  command: string,
  args: readonly string[],
  options: { stdio: 'pipe' },
) => SpawnedProcess;

/** How to reach iptables. Read only; the same object may be shared by every call. */
export interface IptablesOptions {
  /** Logs one line per applied transaction (debug) and per failure (the caller decides level). */
  readonly logger: Logger;
  /** Defaults to `node:child_process` `spawn`. Tests pass a fake or an `ip netns exec` wrapper. */
  readonly spawn?: SpawnFn;
  /** Defaults to `iptables-save` found on PATH. */
  readonly iptablesSave?: string;
  /** Defaults to `iptables-restore` found on PATH. */
  readonly iptablesRestore?: string;
  /**
   * Seconds iptables-restore waits for the xtables lock (`-w`, accepted by iptables 1.8.x on
   * both backends; the nf_tables backend takes no lock and ignores it). Default 5.
   */
  readonly lockWaitSeconds?: number;
  /** A run that takes longer is killed and fails. Default 30 s. */
  readonly timeoutMs?: number;
}

const DEFAULT_LOCK_WAIT_SECONDS = 5;
const DEFAULT_TIMEOUT_MS = 30_000;
// Bounds what we keep of a child's output: a save of a huge foreign nat table is still read in
// full (we need it), but stderr of a failure only needs its head for the error message.
const MAX_STDERR_CHARS = 4096;

interface RunResult {
  readonly stdout: string;
}

/**
 * Runs one command, writes `input` to its stdin, resolves with its stdout when it exits 0.
 * Throws `IptablesCommandError` for a non-zero exit, a signal, a timeout or a failed spawn.
 */
async function run(
  opts: IptablesOptions,
  command: string,
  args: readonly string[],
  input: string | undefined,
): Promise<RunResult> {
  const spawnFn: SpawnFn = opts.spawn ?? nodeSpawn;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const argv = [command, ...args].join(' ');
  let child: SpawnedProcess;
  try {
    child = spawnFn(command, args, { stdio: 'pipe' });
  } catch (err) {
    throw new IptablesCommandError(`${argv}: cannot start: ${String(err)}`, {
      command: argv,
      exitCode: null,
      stderr: '',
      cause: err,
    });
  }
  return new Promise<RunResult>((resolve, reject) => {
    const stdout: string[] = [];
    let stderr = '';
    let settled = false;
    const finish = (err: IptablesCommandError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ stdout: stdout.join('') });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(
        new IptablesCommandError(`${argv}: no answer in ${timeoutMs} ms, killed`, {
          command: argv,
          exitCode: null,
          stderr,
        }),
      );
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => stdout.push(chunk));
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR_CHARS) stderr += chunk.slice(0, MAX_STDERR_CHARS);
    });
    child.once('error', (err) => {
      finish(
        new IptablesCommandError(`${argv}: ${err.message}`, {
          command: argv,
          exitCode: null,
          stderr,
          cause: err,
        }),
      );
    });
    child.once('close', (code, signal) => {
      if (code === 0) {
        finish(undefined);
        return;
      }
      const how = code === null ? `killed by ${signal ?? 'a signal'}` : `exit code ${code}`;
      const detail = describeFailure(stderr, input);
      finish(
        new IptablesCommandError(`${argv} failed (${how})${detail ? `: ${detail}` : ''}`, {
          command: argv,
          exitCode: code,
          stderr,
        }),
      );
    });
    // A child that exits before reading all of stdin makes the write fail with EPIPE; the exit
    // code tells the real story, so the stream error is only noted, never thrown.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/**
 * The first stderr line, and for iptables-restore's "line N" messages the input line it names:
 * "line 3 failed" alone does not say which Service broke the transaction.
 */
function describeFailure(stderr: string, input: string | undefined): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Try `'));
  let text = lines.join('; ');
  const at = /line:? (\d+)/.exec(stderr);
  if (at && input !== undefined) {
    const failed = input.split('\n')[Number(at[1]) - 1];
    if (failed !== undefined) text += ` [input line ${at[1]}: ${failed}]`;
  }
  return text;
}

/**
 * An iptables command failed. Still an `IptablesError` (code `KLP_IPTABLES`); adds the command
 * line, the exit code (`null` when it never ran, was killed or timed out) and the head of stderr.
 */
export class IptablesCommandError extends IptablesError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(
    message: string,
    details: { command: string; exitCode: number | null; stderr: string; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
  }
}

/** `iptables-save -t nat`: the nat table as text. Read only; throws `IptablesCommandError`. */
export async function saveNat(opts: IptablesOptions): Promise<string> {
  return saveTable(opts, 'nat');
}

/** `iptables-save -t <table>`. Read only; throws `IptablesCommandError`. */
export async function saveTable(opts: IptablesOptions, table: 'nat' | 'filter'): Promise<string> {
  const { stdout } = await run(
    opts,
    opts.iptablesSave ?? 'iptables-save',
    ['-t', table],
    undefined,
  );
  return stdout;
}

/**
 * One full sync of the filter chain `KUBE-LC-FIREWALL` (firewall.ts): non-redirected connections
 * to the port range and to `listenerPorts` outside it are dropped. Throws `IptablesCommandError`.
 */
export async function syncFirewall(
  opts: IptablesOptions,
  range: FirewallRange,
  listenerPorts: Iterable<number>,
): Promise<void> {
  const current = await saveTable(opts, 'filter');
  await restoreNoflush(opts, planFirewallSync(current, range, listenerPorts));
}

/**
 * `iptables-restore --noflush -w <s>` with `text` on stdin: one transaction, applied whole or not
 * at all. Tables and chains the text does not name are left alone. Throws
 * `IptablesCommandError` on failure, in which case nothing was changed.
 */
export async function restoreNoflush(opts: IptablesOptions, text: string): Promise<void> {
  const wait = String(opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS);
  await run(opts, opts.iptablesRestore ?? 'iptables-restore', ['--noflush', '-w', wait], text);
}

/** What one sync wrote: the number of REDIRECT rules, and the rules it left out and why. */
export interface SyncResult {
  readonly rules: number;
  readonly skipped: readonly SkippedRule[];
}

/**
 * One full sync: reads the nat table, plans (`planSync`) and applies. The chain is rewritten in
 * full every time, so a sync after a restart, or after someone edited our chain, converges on
 * exactly `rules`. Skipped rules (IPv6 ClusterIPs among them) are returned for the caller to log
 * and count; this function does not log them, since it runs on every sync.
 */
export async function syncServiceRules(
  opts: IptablesOptions,
  rules: readonly RedirectRule[],
): Promise<SyncResult> {
  const selection = selectRules(rules);
  const current = await saveNat(opts);
  const text = planSync(current, selection.rules);
  await restoreNoflush(opts, text);
  opts.logger.debug({ rules: selection.rules.length }, 'iptables rules synced');
  return { rules: selection.rules.length, skipped: selection.skipped };
}

/**
 * Removes every jump and chain kube-lc-proxy added to the nat table (`planCleanup`), nothing
 * else. Resolves `true` when something was removed, `false` when nothing of ours was there.
 * Call it only once no syncer runs any more, or the next sync puts the rules back.
 */
export async function cleanup(opts: IptablesOptions): Promise<boolean> {
  const current = await saveNat(opts);
  const text = planCleanup(current);
  // The filter chain (KUBE-LC-FIREWALL) goes too; removed after the REDIRECT rules, so no
  // listener port is reachable from off the node while redirects still point to it.
  const filterText = planFirewallCleanup(await saveTable(opts, 'filter'));
  if (text === undefined && filterText === undefined) {
    opts.logger.info('iptables: nothing of ours to remove');
    return false;
  }
  if (text !== undefined) await restoreNoflush(opts, text);
  if (filterText !== undefined) await restoreNoflush(opts, filterText);
  opts.logger.info('iptables: removed our chains and jumps');
  return true;
}
