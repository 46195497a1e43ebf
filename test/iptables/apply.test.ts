import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  IptablesCommandError,
  cleanup,
  restoreNoflush,
  saveNat,
  syncServiceRules,
  type IptablesOptions,
  type SpawnFn,
  type SpawnedProcess,
} from '../../src/iptables/apply.js';
import { ErrorCodes, IptablesError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

interface Call {
  command: string;
  args: readonly string[];
  options: unknown;
  stdin: string;
}

type Behaviour =
  { code: number; stdout?: string; stderr?: string } | { spawnError: Error } | { hang: true };

/**
 * A fake spawn: records each call with what was written to stdin, and answers from `script`
 * (one behaviour per call, in order) once stdin has ended, as iptables-restore does.
 */
function fakeSpawn(script: Behaviour[]): { spawn: SpawnFn; calls: Call[] } {
  const calls: Call[] = [];
  const spawn: SpawnFn = (command, args, options) => {
    const behaviour = script[calls.length];
    if (!behaviour) throw new Error(`unexpected call ${command} ${args.join(' ')}`);
    const call: Call = { command, args, options, stdin: '' };
    calls.push(call);
    const child = new EventEmitter() as EventEmitter & SpawnedProcess;
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    Object.assign(child, {
      stdin,
      stdout,
      stderr,
      kill: (signal?: NodeJS.Signals) => {
        setImmediate(() => child.emit('close', null, signal ?? 'SIGTERM'));
        return true;
      },
    });
    stdin.setEncoding('utf8');
    stdin.on('data', (chunk: string) => (call.stdin += chunk));
    stdin.on('end', () => {
      if ('hang' in behaviour) return;
      if ('spawnError' in behaviour) {
        child.emit('error', behaviour.spawnError);
        return;
      }
      stdout.end(behaviour.stdout ?? '');
      stderr.end(behaviour.stderr ?? '');
      setImmediate(() => child.emit('close', behaviour.code, null));
    });
    return child;
  };
  return { spawn, calls };
}

const FRESH = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;

const opts = (spawn: SpawnFn, extra: Partial<IptablesOptions> = {}): IptablesOptions => ({
  logger: silentLogger(),
  spawn,
  ...extra,
});

describe('apply', () => {
  it('saveNat runs iptables-save -t nat without a shell and returns stdout', async () => {
    const { spawn, calls } = fakeSpawn([{ code: 0, stdout: FRESH }]);
    await expect(saveNat(opts(spawn, { iptablesSave: '/sbin/iptables-nft-save' }))).resolves.toBe(
      FRESH,
    );
    expect(calls).toEqual([
      {
        command: '/sbin/iptables-nft-save',
        args: ['-t', 'nat'],
        options: { stdio: 'pipe' },
        stdin: '',
      },
    ]);
  });

  it('restoreNoflush writes the text on stdin with --noflush -w', async () => {
    const { spawn, calls } = fakeSpawn([{ code: 0 }]);
    await restoreNoflush(opts(spawn, { lockWaitSeconds: 7 }), '*nat\nCOMMIT\n');
    expect(calls[0]).toMatchObject({
      command: 'iptables-restore',
      args: ['--noflush', '-w', '7'],
      stdin: '*nat\nCOMMIT\n',
    });
  });

  it('a failed restore throws IptablesError with exit code, stderr and the failing input line', async () => {
    const stderr =
      "iptables-restore v1.8.9 (nf_tables): Chain 'NOPE' does not exist\nError occurred at line: 2\nTry `iptables-restore -h' for more information.\n";
    const { spawn } = fakeSpawn([{ code: 2, stderr }]);
    const err = await restoreNoflush(opts(spawn), '*nat\n-A NOPE -j ACCEPT\nCOMMIT\n').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IptablesError);
    expect(err).toBeInstanceOf(IptablesCommandError);
    const e = err as IptablesCommandError;
    expect(e.code).toBe(ErrorCodes.IPTABLES);
    expect(e.exitCode).toBe(2);
    expect(e.stderr).toBe(stderr);
    expect(e.message).toContain('exit code 2');
    expect(e.message).toContain('[input line 2: -A NOPE -j ACCEPT]');
    expect(e.message).not.toContain('Try `');
  });

  it('a binary that cannot start throws IptablesError', async () => {
    const enoent = Object.assign(new Error('spawn iptables-save ENOENT'), { code: 'ENOENT' });
    const { spawn } = fakeSpawn([{ spawnError: enoent }]);
    const err = (await saveNat(opts(spawn)).catch((e: unknown) => e)) as IptablesCommandError;
    expect(err).toBeInstanceOf(IptablesCommandError);
    expect(err.exitCode).toBeNull();
    expect(err.cause).toBe(enoent);
  });

  it('a run that hangs is killed after timeoutMs', async () => {
    const { spawn } = fakeSpawn([{ hang: true }]);
    const err = (await saveNat(opts(spawn, { timeoutMs: 20 })).catch(
      (e: unknown) => e,
    )) as IptablesCommandError;
    expect(err).toBeInstanceOf(IptablesCommandError);
    expect(err.message).toContain('killed');
  });

  it('syncServiceRules saves, plans and restores, and returns the skipped rules', async () => {
    const { spawn, calls } = fakeSpawn([{ code: 0, stdout: FRESH }, { code: 0 }]);
    const v6 = { servicePort: 'a/v6:p', clusterIP: 'fd00::1', port: 80, proxyPort: 40002 };
    const result = await syncServiceRules(opts(spawn), [
      { servicePort: 'a/b:p', clusterIP: '10.96.0.1', port: 80, proxyPort: 40001 },
      v6,
    ]);
    expect(result).toEqual({ rules: 1, skipped: [{ rule: v6, reason: 'ipv6' }] });
    expect(calls.map((c) => c.command)).toEqual(['iptables-save', 'iptables-restore']);
    expect(calls[1]!.stdin).toContain('-A KUBE-LC-SERVICES -d 10.96.0.1/32');
    expect(calls[1]!.stdin).toContain('-I PREROUTING 1');
  });

  it('cleanup does nothing (and runs no restore) when nothing of ours is there', async () => {
    const { spawn, calls } = fakeSpawn([
      { code: 0, stdout: FRESH },
      { code: 0, stdout: '' },
    ]);
    await expect(cleanup(opts(spawn))).resolves.toBe(false);
    // The nat and the filter table are read; nothing is restored.
    expect(calls.map((c) => c.args.join(' '))).toEqual(['-t nat', '-t filter']);
  });

  it('cleanup applies planCleanup', async () => {
    const synced = FRESH.replace(
      'COMMIT',
      ':KUBE-LC-SERVICES - [0:0]\n-A OUTPUT -m comment --comment "kube-lc-proxy service portals" -j KUBE-LC-SERVICES\nCOMMIT',
    );
    const { spawn, calls } = fakeSpawn([
      { code: 0, stdout: synced },
      { code: 0, stdout: '' },
      { code: 0 },
    ]);
    await expect(cleanup(opts(spawn))).resolves.toBe(true);
    expect(calls).toHaveLength(3);
    expect(calls[2]!.stdin).toBe(
      '*nat\n-D OUTPUT -m comment --comment "kube-lc-proxy service portals" -j KUBE-LC-SERVICES\n:KUBE-LC-SERVICES - [0:0]\n-X KUBE-LC-SERVICES\n-X\nCOMMIT\n',
    );
  });
});
