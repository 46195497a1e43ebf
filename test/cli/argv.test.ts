import { describe, expect, it } from 'vitest';
import { checkArgv } from '../../src/cli/argv.js';
import { parseFileLimits, raiseFileLimit } from '../../src/cli/fd-limit.js';
import { silentLogger } from '../../src/log.js';

const types = { string: ['shutdown-grace', 'source', 'metrics-address'], boolean: ['h2-drain'] };

describe('checkArgv', () => {
  it.each([
    [
      ['run', '--shutdown-grace', '-5s'],
      ['run', '--shutdown-grace=-5s'],
    ],
    [
      ['run', '--source=file:a', '--h2-drain'],
      ['run', '--source=file:a', '--h2-drain'],
    ],
    [
      ['run', '--no-h2-drain', '--source', 'k8s'],
      ['run', '--no-h2-drain', '--source=k8s'],
    ],
    [
      ['run', '--', '--source', '--source'],
      ['run', '--', '--source', '--source'],
    ],
  ])('%j becomes %j', (argv, want) => {
    expect(checkArgv(argv, types)).toEqual(want);
  });

  it.each([
    [['run', '--source'], /--source: needs a value/],
    [['run', '--source', '--h2-drain'], /--source: needs a value, got the flag --h2-drain/],
    [['run', '--source', 'a', '--source=b'], /--source: given more than once/],
    [['run', '--h2-drain', '--no-h2-drain'], /--h2-drain: given more than once/],
    [['run', '--metricsAddress', 'a:1', '--metrics-address', 'b:1'], /--metrics-address: given/],
  ])('%j is refused', (argv, message) => {
    expect(() => checkArgv(argv, types)).toThrow(message);
  });
});

describe('open-file limit', () => {
  it('reads the limits line of /proc/PID/limits', () => {
    const text =
      'Limit                     Soft Limit           Hard Limit           Units     \n' +
      'Max open files            1024                 1048576              files     \n';
    expect(parseFileLimits(text)).toEqual({ soft: 1024, hard: 1048576 });
    expect(parseFileLimits('Max open files unlimited unlimited files')).toEqual({
      soft: Infinity,
      hard: Infinity,
    });
    expect(parseFileLimits('nothing here')).toBeUndefined();
  });

  it('reports the limits of this process, and never throws when prlimit fails', async () => {
    const limits = await raiseFileLimit(silentLogger(), () =>
      Promise.reject(new Error('no prlimit here')),
    );
    expect(limits?.soft).toBeGreaterThan(0);
    expect(limits?.hard).toBeGreaterThanOrEqual(limits?.soft ?? 0);
  });
});
