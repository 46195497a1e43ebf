/**
 * Kubernetes resource quantities ("100m", "512Mi", "2") as plain numbers: CPU in cores, memory
 * in bytes. Returns undefined for anything it does not understand, so a typo is a finding.
 */
export function parseQuantity(q: string | number | undefined): number | undefined {
  if (typeof q === 'number') return q;
  if (q === undefined) return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (m?.[1] === undefined) return undefined;
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] === undefined ? 1 : (factor[m[2]] ?? NaN));
}

/** Go-style durations as the CLI takes them ("30s", "10m", "1h", "250ms") in milliseconds. */
export function parseDurationMs(d: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(d);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  return Number(m[1]) * (unit[m[2]] ?? NaN);
}

/** The value of `--name=value` or `--name value` in an argument list. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === `--${name}`) return args[i + 1];
    if (a?.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}
