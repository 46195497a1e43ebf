/**
 * The demo's script: when backends are added, marked terminating, removed and replaced, as
 * fractions of the run so `--duration` stretches or shrinks every phase alike. Pure.
 */

export type StepKind =
  'start' | 'scale-out' | 'terminating' | 'removed' | 'replacement-ready' | 'end';

export interface Step {
  readonly kind: StepKind;
  /** Seconds from the start of the run. */
  readonly at: number;
  readonly label: string;
}

export interface ScenarioOptions {
  /** Backends at the start. */
  readonly initialBackends: number;
  /** Backends after the scale-out. */
  readonly scaledBackends: number;
  /** Whole run, in seconds. */
  readonly durationSeconds: number;
}

/** The steps of a run, in order. */
export function scenario(o: ScenarioOptions): Step[] {
  const d = o.durationSeconds;
  const at = (f: number): number => Math.round(d * f * 10) / 10;
  return [
    { kind: 'start', at: 0, label: `${o.initialBackends} backends, clients connect` },
    { kind: 'scale-out', at: at(0.16), label: `scale out to ${o.scaledBackends} backends` },
    { kind: 'terminating', at: at(0.5), label: 'rolling update: backend 1 terminating' },
    { kind: 'removed', at: at(0.58), label: 'backend 1 removed and stopped' },
    {
      kind: 'replacement-ready',
      at: at(0.62),
      label: `backend ${o.scaledBackends + 1} ready (replacement)`,
    },
    { kind: 'end', at: d, label: 'end' },
  ];
}

/** max/mean of `counts` (1 when there is nothing to compare). */
export function skew(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.length === 0 || total === 0) return 1;
  return Math.max(...counts) / (total / counts.length);
}
