import { describe, expect, it } from 'vitest';
import { Syncer, type SyncReport, type SyncerClock } from '../../src/lib/coalescing-runner.js';

/** A manual clock: timers fire only in `advance`, in time order, with promises flushed between. */
class FakeClock implements SyncerClock {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves time forward by `ms`, firing due timers one by one. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (let guard = 0; guard < 10_000; guard++) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
      await flush();
    }
    this.#now = end;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Deferred {
  resolve(rules: number): void;
  reject(err: unknown): void;
}

/** A sync function whose runs the test finishes by hand, recording start times. */
function manualSync(clock: FakeClock): {
  sync: () => Promise<number>;
  starts: number[];
  runs: Deferred[];
} {
  const starts: number[] = [];
  const runs: Deferred[] = [];
  const sync = (): Promise<number> => {
    starts.push(clock.now());
    return new Promise<number>((resolve, reject) => runs.push({ resolve, reject }));
  };
  return { sync, starts, runs };
}

/** A sync function that answers at once from a list of outcomes (number = ok, Error = fail). */
function scriptedSync(clock: FakeClock, outcomes: (number | Error)[]) {
  const starts: number[] = [];
  const sync = async (): Promise<number> => {
    starts.push(clock.now());
    const outcome = outcomes[starts.length - 1] ?? 0;
    if (outcome instanceof Error) throw outcome;
    return outcome;
  };
  return { sync, starts };
}

describe('Syncer', () => {
  it('runs the first sync promptly and coalesces a burst into it', async () => {
    const clock = new FakeClock();
    const { sync, starts } = scriptedSync(clock, [3]);
    const syncer = new Syncer({ sync, clock });
    for (let i = 0; i < 10; i++) syncer.requestSync();
    await clock.advance(0);
    expect(starts).toEqual([0]);
    await clock.advance(10_000);
    expect(starts).toEqual([0]);
  });

  it('runs at most once per minInterval, and runs again for requests in between', async () => {
    const clock = new FakeClock();
    const { sync, starts } = scriptedSync(clock, []);
    const syncer = new Syncer({ sync, clock, minIntervalMs: 1000 });
    syncer.requestSync();
    await clock.advance(100);
    syncer.requestSync();
    await clock.advance(200);
    syncer.requestSync();
    await clock.advance(5000);
    expect(starts).toEqual([0, 1000]);
  });

  it('a request while a sync runs leads to exactly one more sync after it', async () => {
    const clock = new FakeClock();
    const { sync, starts, runs } = manualSync(clock);
    const syncer = new Syncer({ sync, clock, minIntervalMs: 1000 });
    syncer.requestSync();
    await clock.advance(0);
    expect(starts).toEqual([0]);
    syncer.requestSync();
    syncer.requestSync();
    await clock.advance(1500); // the first sync is still running: no second one may start
    expect(starts).toEqual([0]);
    runs[0]!.resolve(1);
    await clock.advance(0);
    expect(starts).toEqual([0, 1500]);
    runs[1]!.resolve(1);
    await clock.advance(10_000);
    expect(starts).toEqual([0, 1500]);
  });

  it('retries a failure with doubling backoff up to the cap, and resets after a success', async () => {
    const clock = new FakeClock();
    const fail = new Error('iptables-restore failed');
    const { sync, starts } = scriptedSync(clock, [fail, fail, fail, fail, fail, fail, 5, 5]);
    const reports: SyncReport[] = [];
    const syncer = new Syncer({
      sync,
      clock,
      random: () => 0.5, // no jitter
      retryInitialMs: 1000,
      retryMaxMs: 10_000,
      onSync: (r) => reports.push(r),
    });
    syncer.requestSync();
    await clock.advance(60_000);
    // 0, +1 s, +2 s, +4 s, +8 s, +10 s (capped), then success and no more retries.
    expect(starts).toEqual([0, 1000, 3000, 7000, 15_000, 25_000, 35_000]);
    expect(reports.map((r) => r.ok)).toEqual([false, false, false, false, false, false, true]);
    expect(reports[0]).toEqual({ ok: false, durationSeconds: 0, rules: 0, error: fail });
    expect(reports[6]).toEqual({ ok: true, durationSeconds: 0, rules: 5 });
    expect(syncer.failures).toBe(0);
    syncer.requestSync();
    await clock.advance(60_000);
    expect(starts.slice(7)).toEqual([60_000]); // prompt again: backoff was reset
  });

  it.each([
    [0, 800],
    [0.999_999, 1200],
  ])('jitters retry delays (random %d -> %d ms)', async (random, delay) => {
    const clock = new FakeClock();
    const { sync, starts } = scriptedSync(clock, [new Error('x'), 1]);
    const syncer = new Syncer({ sync, clock, random: () => random, minIntervalMs: 100 });
    syncer.requestSync();
    await clock.advance(5000);
    expect(starts[0]).toBe(0);
    expect(Math.round(starts[1]!)).toBe(delay);
  });

  it('a sync function that throws synchronously is retried like any failure', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const syncer = new Syncer({
      sync: () => {
        calls += 1;
        if (calls === 1) throw new Error('sync throw');
        return Promise.resolve(1);
      },
      clock,
      random: () => 0.5,
    });
    syncer.requestSync();
    await clock.advance(5000);
    expect(calls).toBe(2);
  });

  it('measures durationSeconds with the injected clock', async () => {
    const clock = new FakeClock();
    const { sync, runs } = manualSync(clock);
    const reports: SyncReport[] = [];
    const syncer = new Syncer({ sync, clock, onSync: (r) => reports.push(r) });
    syncer.requestSync();
    await clock.advance(0);
    await clock.advance(250);
    runs[0]!.resolve(7);
    await clock.advance(0);
    expect(reports).toEqual([{ ok: true, durationSeconds: 0.25, rules: 7 }]);
  });

  it('an onSync hook that throws does not stop syncing', async () => {
    const clock = new FakeClock();
    const { sync, starts } = scriptedSync(clock, []);
    const syncer = new Syncer({
      sync,
      clock,
      onSync: () => {
        throw new Error('metrics broke');
      },
    });
    syncer.requestSync();
    await clock.advance(0);
    syncer.requestSync();
    await clock.advance(2000);
    expect(starts).toEqual([0, 1000]);
  });

  it('stop() cancels timers and waits for the running sync; later requests are ignored', async () => {
    const clock = new FakeClock();
    const { sync, starts, runs } = manualSync(clock);
    const syncer = new Syncer({ sync, clock });
    syncer.requestSync();
    await clock.advance(0);
    syncer.requestSync(); // wants one more after the running one
    let stopped = false;
    const stopping = syncer.stop().then(() => (stopped = true));
    await flush();
    expect(stopped).toBe(false);
    runs[0]!.resolve(1);
    await stopping;
    expect(stopped).toBe(true);
    syncer.requestSync();
    await clock.advance(60_000);
    expect(starts).toEqual([0]);
    expect(clock.pending).toBe(0);
  });

  it('resyncs every maxInterval without requests, when asked to', async () => {
    const clock = new FakeClock();
    const { sync, starts } = scriptedSync(clock, []);
    const syncer = new Syncer({ sync, clock, minIntervalMs: 1000, maxIntervalMs: 10_000 });
    syncer.requestSync();
    await clock.advance(25_000);
    expect(starts).toEqual([0, 10_000, 20_000]);
    syncer.requestSync(); // a request pulls the next sync forward
    await clock.advance(0);
    expect(starts).toEqual([0, 10_000, 20_000, 25_000]);
    await syncer.stop();
  });
});
