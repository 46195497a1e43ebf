import { describe, expect, it } from 'vitest';
import {
  Harness,
  canUseNetns,
  probeTcp,
  startTcpClient,
  startTcpServer,
  sweepStaleNamespaces,
} from './harness/index.js';
import { execArgv } from './harness/process.js';

async function namespaceNames(): Promise<string[]> {
  const { stdout } = await execArgv(['ip', 'netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.runIf(canUseNetns())('network namespace harness', () => {
  it('a pod reaches another pod through the bridge; teardown leaves nothing behind', async () => {
    const h = await Harness.create();
    let pids: number[];
    try {
      const node = await h.addNode();
      const a = await node.addPod('a');
      const b = await node.addPod('b');
      expect(node.ns).toMatch(/^klp-[0-9a-f]{8}-node0$/);
      expect([a.ip, b.ip]).toEqual(['10.244.0.2', '10.244.0.3']);

      const server = await startTcpServer(h, b.ns, [{ name: 'backend-b', port: 8080 }]);
      expect(server.port('backend-b')).toBe(8080);

      // Long-lived connections, held until told to close.
      const client = await startTcpClient(h, a.ns, b.ip, 8080, { count: 3 });
      expect(client.backends).toEqual(['backend-b', 'backend-b', 'backend-b']);
      const connections = server.process.events().filter((e) => e.event === 'connection');
      expect(connections.map((e) => String(e.remote).split(':')[0])).toEqual([a.ip, a.ip, a.ip]);

      // A pod reaches the node through its gateway, and nothing else is routed.
      expect((await h.exec(a.ns, ['ip', 'route', 'get', '10.96.0.10'])).stdout).toContain(
        `via ${node.bridgeIP}`,
      );
      expect(await probeTcp(h, a.ns, b.ip, 8081, { connectTimeoutMs: 2000 })).toMatchObject({
        ok: false,
        code: 'ECONNREFUSED',
      });

      // A process left running on purpose: teardown must stop it.
      pids = [server.process.pid!, client.process.pid!];
      expect(pids.every(alive)).toBe(true);
      expect(h.processes).toHaveLength(2);
    } finally {
      await h.teardown();
    }
    expect(pids.some(alive)).toBe(false);
    const left = (await namespaceNames()).filter((n) => n.startsWith(h.prefix));
    expect(left).toEqual([]);
    await h.teardown(); // idempotent
  });

  it('sweeps namespaces of dead runs, never those of a live one', async () => {
    const live = await Harness.create({ skipSweep: true });
    try {
      const liveNs = await live.addNamespace('live');
      // A namespace as a crashed run leaves it: our naming, no live owner.
      const stale = 'klp-0badc0de-stale';
      await execArgv(['ip', 'netns', 'add', stale]);
      const sleeper = live.spawn(stale, ['sleep', '30']);
      await new Promise((r) => setTimeout(r, 100));
      const swept = sweepStaleNamespaces();
      expect(swept).toContain(stale);
      expect(swept).not.toContain(liveNs);
      const names = await namespaceNames();
      expect(names).toContain(liveNs);
      expect(names).not.toContain(stale);
      expect(await sleeper.exited).toMatchObject({ signal: 'SIGKILL' });
    } finally {
      await live.teardown();
    }
  });
});
