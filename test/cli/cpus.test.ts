import { describe, expect, it } from 'vitest';
import { cgroupCpuQuota, defaultWorkers, MAX_WORKERS } from '../../src/cli/cpus.js';

/** A reader of a fake /sys/fs/cgroup. */
const files =
  (f: Record<string, string>) =>
  (path: string): string => {
    const v = f[path];
    if (v === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    return v;
  };

describe('--workers auto: the CPUs the container may use', () => {
  it.each([
    ['cgroup v2, a limit of 1500m', { '/sys/fs/cgroup/cpu.max': '150000 100000\n' }, 2],
    ['cgroup v2, a limit of 4', { '/sys/fs/cgroup/cpu.max': '400000 100000\n' }, 4],
    ['cgroup v2, no limit', { '/sys/fs/cgroup/cpu.max': 'max 100000\n' }, undefined],
    [
      'cgroup v1, a limit of 250m',
      {
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '25000\n',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      },
      1,
    ],
    [
      'cgroup v1, no limit (-1)',
      {
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      },
      undefined,
    ],
    ['no cgroup files', {}, undefined],
    ['garbage', { '/sys/fs/cgroup/cpu.max': 'x y\n' }, undefined],
  ])('%s', (_, f, want) => {
    expect(cgroupCpuQuota(files(f))).toBe(want);
  });

  it('takes the smaller of the quota and the CPUs, at least 1, at most the maximum', () => {
    expect(defaultWorkers(2, 8)).toBe(2);
    expect(defaultWorkers(undefined, 8)).toBe(8);
    expect(defaultWorkers(16, 4)).toBe(4);
    expect(defaultWorkers(undefined, 0)).toBe(1);
    expect(defaultWorkers(undefined, 512)).toBe(MAX_WORKERS);
  });
});
