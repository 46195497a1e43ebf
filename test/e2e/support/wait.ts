/** Polling helpers for end-to-end tests: every wait is bounded and says what it waited for. */

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `probe` until it returns something other than `undefined` or `false`, and resolves with
 * that. Rejects after `timeoutMs` (default 10 s) naming `what` and the last value seen (or the
 * last error `probe` threw), so a failing test says how far it got.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: () => unknown } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const extra = opts.describe ? `\n${JSON.stringify(opts.describe(), null, 2)}` : '';
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`waited ${timeoutMs} ms for ${what}; last seen: ${seen}${extra}`);
    }
    await sleep(intervalMs);
  }
}

/** How many of `items` there are of each value, as a plain object with sorted keys. */
export function tally(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of [...items].sort()) out[item] = (out[item] ?? 0) + 1;
  return out;
}
