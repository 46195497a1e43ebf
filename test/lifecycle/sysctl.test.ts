import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { enableTcpMigrateReq } from '../../src/daemon/sysctl.js';

describe('net.ipv4.tcp_migrate_req at start', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function sysctlFile(value: string | undefined): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'klp-sysctl-'));
    dirs.push(dir);
    const path = join(dir, 'tcp_migrate_req');
    if (value !== undefined) await writeFile(path, value);
    return path;
  }

  function logger() {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'info' },
      { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    );
    return { log, lines };
  }

  it('sets 0 to 1 and says so', async () => {
    const path = await sysctlFile('0\n');
    const { log, lines } = logger();
    expect(await enableTcpMigrateReq(log, { set: true, path })).toEqual({
      enabled: true,
      how: 'set',
    });
    expect((await readFile(path, 'utf8')).trim()).toBe('1');
    expect(lines.map((l) => l.msg)).toEqual(['sysctl set']);
  });

  it('leaves 1 alone, silently', async () => {
    const path = await sysctlFile('1\n');
    const { log, lines } = logger();
    expect(await enableTcpMigrateReq(log, { set: true, path })).toEqual({
      enabled: true,
      how: 'already',
    });
    expect(lines).toEqual([]);
  });

  it('told not to set it: leaves 0, and warns once', async () => {
    const path = await sysctlFile('0\n');
    const { log, lines } = logger();
    expect(await enableTcpMigrateReq(log, { set: false, path })).toEqual({
      enabled: false,
      how: 'skipped',
    });
    expect((await readFile(path, 'utf8')).trim()).toBe('0');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, value: '0' });
  });

  it('cannot write it (read-only /proc/sys, an old kernel): reports failed and warns, never throws', async () => {
    const dir = await sysctlFile(undefined);
    const path = join(dir, 'missing-dir', 'tcp_migrate_req');
    const { log, lines } = logger();
    expect(await enableTcpMigrateReq(log, { set: true, path })).toEqual({
      enabled: false,
      how: 'failed',
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, err: 'ENOENT' });
  });
});
