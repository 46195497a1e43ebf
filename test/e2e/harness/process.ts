/**
 * Running programs for end-to-end tests: one-shot commands with captured output (`execArgv`)
 * and long-running processes whose stdout can be awaited line by line (`NsProcess`). Always an
 * argv, never a shell: a test never has to think about quoting.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** How a one-shot command ended and what it printed. */
export interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of `execArgv` and `Harness.exec`. */
export interface ExecOptions {
  /** Written to stdin, which is then closed. Default: stdin closed at once. */
  readonly input?: string;
  /** Killed (SIGKILL) and rejected after this long. Default 30 s. */
  readonly timeoutMs?: number;
  /** When true (default), a non-zero exit rejects with stdout and stderr in the message. */
  readonly check?: boolean;
}

/** The argv that runs `argv` inside network namespace `ns` (`ip netns exec`, no shell). */
export function netnsArgv(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Runs `argv` to completion and captures its output. See `ExecOptions` for failure rules. */
export function execArgv(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new Error('execArgv: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (opts.check === false || code === 0) {
        resolve(result);
        return;
      }
      const how = code === null ? `killed by ${signal} (timeout ${timeoutMs} ms?)` : `exit ${code}`;
      reject(new Error(`${argv.join(' ')}: ${how}\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
    child.stdin.on('error', () => {}); // EPIPE when it exits without reading stdin
    child.stdin.end(opts.input ?? '');
  });
}

/** How a spawned process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A JSON line a fixture program printed. */
export type JsonEvent = Record<string, unknown> & { event?: string };

// Output kept per stream; a chatty process cannot exhaust the test's memory.
const MAX_CAPTURE_CHARS = 4 * 1024 * 1024;

interface Waiter {
  readonly check: () => boolean;
  readonly fail: (err: Error) => void;
}

/**
 * A long-running process inside a network namespace, with its stdout and stderr captured (up
 * to 4 MiB each). Created by `Harness.spawn`, which also kills it at teardown; the test may stop
 * it earlier with `stop()`. `ip netns exec` execs the program in place, so `pid` is the
 * program's own pid.
 */
export class NsProcess {
  readonly ns: string;
  readonly argv: readonly string[];
  readonly pid: number | undefined;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  #stdout = '';
  #stderr = '';
  #exit: ExitInfo | undefined;
  readonly #child: ChildProcess;
  readonly #waiters = new Set<Waiter>();

  constructor(ns: string, argv: readonly string[]) {
    this.ns = ns;
    this.argv = argv;
    const [command, ...args] = netnsArgv(ns, argv);
    this.#child = spawn(command!, args, { stdio: 'pipe' });
    this.pid = this.#child.pid;
    this.#child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      if (this.#stdout.length < MAX_CAPTURE_CHARS) this.#stdout += c;
      this.#poke();
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      if (this.#stderr.length < MAX_CAPTURE_CHARS) this.#stderr += c;
    });
    this.#child.stdin!.on('error', () => {}); // EPIPE after it exited
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.#exit) return;
        this.#exit = info;
        resolve(info);
        this.#poke();
      };
      this.#child.once('error', (err) => {
        this.#stderr += `spawn error: ${err.message}\n`;
        done({ code: null, signal: null });
      });
      this.#child.once('close', (code, signal) => done({ code, signal }));
    });
  }

  /** Everything printed on stdout so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** Everything printed on stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** How it ended, or undefined while it runs. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Complete stdout lines so far (a line still being written is left out). */
  lines(): string[] {
    const all = this.#stdout.split('\n');
    all.pop();
    return all;
  }

  /** The stdout lines that are JSON objects, parsed, in order. Other lines are skipped. */
  events(): JsonEvent[] {
    const out: JsonEvent[] = [];
    for (const line of this.lines()) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as JsonEvent);
      } catch {
        // not JSON after all: fixture programs print only JSON, others may print anything
      }
    }
    return out;
  }

  /**
   * Resolves with the first stdout JSON event (already printed or to come) that `match`
   * accepts, or with the `nth` (0-based) such event. Rejects when the process exits first or
   * after `timeoutMs` (default 10 s), with its output in the message, so a failing test shows
   * what the program said.
   */
  waitForEvent(match: (e: JsonEvent) => boolean, timeoutMs = 10_000, nth = 0): Promise<JsonEvent> {
    return this.#waitFor(() => this.events().filter(match)[nth], timeoutMs, 'event');
  }

  /** Like `waitForEvent`, for a stdout line matching `re`. */
  waitForLine(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return this.#waitFor(() => this.lines().find((l) => re.test(l)), timeoutMs, String(re));
  }

  #waitFor<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const waiter: Waiter = {
        check: () => {
          const found = find();
          if (found !== undefined) {
            finish();
            resolve(found);
            return true;
          }
          if (this.#exit) {
            waiter.fail(new Error(`exited (${JSON.stringify(this.#exit)}) before ${what}`));
            return true;
          }
          return false;
        },
        fail: (err) => {
          finish();
          reject(new Error(`${this.describe()}: ${err.message}\n${this.#output()}`));
        },
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (waiter.check()) return;
      this.#waiters.add(waiter);
      timer = setTimeout(() => waiter.fail(new Error(`no ${what} in ${timeoutMs} ms`)), timeoutMs);
    });
  }

  #poke(): void {
    for (const w of [...this.#waiters]) w.check();
  }

  #output(): string {
    return `stdout:\n${this.#stdout.slice(-4000)}\nstderr:\n${this.#stderr.slice(-4000)}`;
  }

  /** `argv` and namespace, for messages. */
  describe(): string {
    return `[${this.ns}] ${this.argv.join(' ')}`;
  }

  /** Writes to its stdin (ignored once it has exited). */
  write(text: string): void {
    if (!this.#exit) this.#child.stdin!.write(text);
  }

  /** Closes its stdin; the fixture programs take that as "finish and exit". */
  endStdin(): void {
    this.#child.stdin!.end();
  }

  /** Sends `signal` (default SIGTERM) if it still runs. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.#exit) this.#child.kill(signal);
  }

  /**
   * Ends the process: `signal` (default SIGTERM), then SIGKILL after `graceMs` (default 2 s).
   * Resolves with how it ended. Idempotent.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 2000): Promise<ExitInfo> {
    if (this.#exit) return this.#exit;
    this.kill(signal);
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }
}
