import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Most worker threads `--workers` accepts (and the default never passes). */
export const MAX_WORKERS = 64;

/**
 * CPUs a cgroup quota allows, rounded up: `cpu.max` (cgroup v2: "QUOTA PERIOD" or "max
 * PERIOD") or `cpu.cfs_quota_us` / `cpu.cfs_period_us` (v1). Undefined when there is no quota
 * or it cannot be read. A Kubernetes CPU limit of 1500m reads as 2.
 */
export function cgroupCpuQuota(
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): number | undefined {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota === 'max') return undefined;
    const q = Number(quota);
    const p = Number(period);
    if (q > 0 && p > 0) return Math.ceil(q / p);
  } catch {
    // Not cgroup v2; try v1.
  }
  try {
    const q = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim());
    const p = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim());
    if (q > 0 && p > 0) return Math.ceil(q / p);
  } catch {
    // No quota to read: the CPUs this process may run on decide.
  }
  return undefined;
}

/**
 * The default of `--workers`: the CPUs the container may use (the cgroup quota, and the CPUs
 * the process may run on), at least 1, at most MAX_WORKERS.
 */
export function defaultWorkers(
  quota: number | undefined = cgroupCpuQuota(),
  cpus: number = availableParallelism(),
): number {
  return Math.max(1, Math.min(MAX_WORKERS, cpus, quota ?? cpus));
}
