import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { manifestsFile } from '../support/manifests.js';

/** Runs the CLI to completion. */
function cli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/kube-lc-proxy.js', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kube-lc-proxy ${args.join(' ')} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const run = (...args: string[]): string[] => ['run', '--source', 'file:x', ...args];

describe('bad flags exit 2 and name the flag and the value', () => {
  it.each([
    // A negative duration written with a space (yargs would read -5s as short flags).
    [run('--shutdown-grace', '-5s'), /--shutdown-grace: must not be negative, got "-5s"/],
    [run('--half-closed-timeout', '-1s'), /--half-closed-timeout: must not be negative/],
    // Worker threads: a count out of range, a word, a heap limit below the floor.
    [run('--workers', '65'), /--workers: .*65/],
    [run('--workers', 'many'), /--workers: .*many/],
    [run('--worker-heap-limit', '1Mi'), /--worker-heap-limit: .*1Mi/],
    // A flag without a value: last, or followed by another flag.
    [run('--drain-grace'), /--drain-grace: needs a value/],
    [
      run('--idle-timeout', '--log-level', 'info'),
      /--idle-timeout: needs a value, got the flag --log-level/,
    ],
    // An address that cannot resolve.
    [
      run('--metrics-address', '999.1.1.1:9901'),
      /--metrics-address: not an IPv4 address: 999\.1\.1\.1/,
    ],
    // A flag repeated that may not be.
    [
      ['run', '--source', 'file:a', '--source', 'file:b'],
      /--source: given more than once \(--source file:a, then --source file:b\)/,
    ],
    [run('--idle-timeout', 'soon'), /--idle-timeout: not a duration: "soon"/],
    [
      run('--max-manifests-bytes', 'lots'),
      /--max-manifests-bytes: expected a size like 16Mi.*"lots"/,
    ],
  ])('%j', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('manifests file limit at start', () => {
  it('exits 1 on a 20 MB pathological file, naming the file and the limit', async () => {
    const f = await manifestsFile([]);
    try {
      const line = '\t- : ][ {{ garbage line with : colons and "quotes\n';
      await f.writeText(line.repeat(Math.ceil(20_000_000 / line.length)));
      const r = await cli([
        'run',
        '--source',
        `file:${f.path}`,
        '--metrics-address',
        '127.0.0.1:0',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(f.path);
      expect(r.stderr).toMatch(/more than --max-manifests-bytes \(4194304\)/);
    } finally {
      await f.remove();
    }
  });
});
