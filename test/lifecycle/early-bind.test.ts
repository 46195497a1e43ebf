import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { SpawnFn, SpawnedProcess } from '../../src/iptables/apply.js';
import { bindAdoptedEarly, closePrebound, runsWithIptables } from '../../src/proxy/early-bind.js';
import { freePort } from '../support/lifecycle.js';

/** A spawn that answers every command with `stdout` and exit code `code`. */
function answering(stdout: string, code = 0): SpawnFn {
  return () => {
    const child = new EventEmitter() as EventEmitter & SpawnedProcess;
    const stdin = new PassThrough();
    const out = new PassThrough();
    const err = new PassThrough();
    Object.assign(child, { stdin, stdout: out, stderr: err, kill: () => true });
    stdin.on('finish', () => {
      out.end(stdout);
      err.end('');
      setImmediate(() => child.emit('close', code, null));
    });
    stdin.resume();
    return child;
  };
}

function save(rules: [string, number][]): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':KUBE-LC-SERVICES - [0:0]',
    ...rules.map(
      ([name, port], i) =>
        `-A KUBE-LC-SERVICES -d 10.96.0.${i + 1}/32 -p tcp -m comment --comment "${name}" -m tcp --dport 80 -j REDIRECT --to-ports ${port}`,
    ),
    'COMMIT',
    '',
  ].join('\n');
}

describe('binding the adopted ports before the daemon loads', () => {
  it('binds the free ports of the rules, leaves ports a running process listens on, and reports every rule', async () => {
    const [busyPort, freeOne] = [await freePort(), await freePort()];
    const running = createServer();
    running.listen({ host: '127.0.0.1', port: busyPort, reusePort: true });
    await once(running, 'listening');
    try {
      const early = await bindAdoptedEarly(
        {
          spawn: answering(
            save([
              ['a/busy:p', busyPort],
              ['a/free:p', freeOne],
            ]),
          ),
        },
        '127.0.0.1',
      );
      expect(early.rules?.map((r) => [r.servicePort, r.proxyPort])).toEqual([
        ['a/busy:p', busyPort],
        ['a/free:p', freeOne],
      ]);
      expect(early.listeners.map((l) => l.address.port)).toEqual([freeOne]);
      closePrebound(early.listeners);
    } finally {
      await new Promise((r) => running.close(r));
    }
  });

  it('reports unreadable rules as undefined (the daemon reads them itself) and binds nothing', async () => {
    const early = await bindAdoptedEarly({ spawn: answering('', 1) }, '127.0.0.1');
    expect(early).toEqual({ rules: undefined, listeners: [] });
  });

  it.each([
    [['run'], true],
    [['run', '--source', 'k8s'], true],
    [['run', '--source=file:x.yaml'], false],
    [['run', '--source', 'file:x.yaml', '--intercept', 'iptables'], true],
    [['run', '--intercept=none'], false],
    [['status'], false],
    [[], false],
  ])('runsWithIptables(%j) is %s', (argv, want) => {
    expect(runsWithIptables(argv)).toBe(want);
  });
});
