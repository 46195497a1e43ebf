/**
 * The proxy's iptables life cycle from the real CLI in a node namespace: restarts keep the
 * listener ports and the rules, and `kube-lc-proxy cleanup` leaves the nat table as it found it.
 */
import { describe, expect, it } from 'vitest';
import { normalizeSave } from '../../src/iptables/plan.js';
import { canUseNetns, probeTcp, setupHarness, type Harness } from './harness/index.js';
import { startTcpBackends } from './support/backends.js';
import {
  duplicateLines,
  jumpsTo,
  listenPort,
  listens,
  natSave,
  redirects,
  servicePortName,
  startCluster,
  waitForSync,
  type Cluster,
  type ServiceSpec,
} from './support/cluster.js';
import { PROXY_BIN } from './support/proxy.js';

const JUMP_PREFIX = '-m comment --comment "kube-lc-proxy service portals" -j KUBE-LC-SERVICES';

/** Two Services on two backend pods. */
async function twoServices(c: Cluster, tag: string): Promise<ServiceSpec[]> {
  const backends = await startTcpBackends(c, tag, 2, 8080);
  const endpoints = backends.map((b) => b.pod.ip);
  const specs: ServiceSpec[] = [
    { name: 'web', clusterIP: '10.96.0.10', port: 80, targetPort: 8080, endpoints },
    { name: 'api', clusterIP: '10.96.0.11', port: 443, targetPort: 8080, endpoints },
  ];
  for (const s of specs) await c.applyService(s);
  return specs;
}

/** `kube-lc-proxy cleanup` inside `ns`. */
function runCleanup(h: Harness, ns: string) {
  return h.exec(ns, [process.execPath, PROXY_BIN, 'cleanup'], { check: false, timeoutMs: 20_000 });
}

describe.runIf(canUseNetns())('iptables life cycle of the proxy (k8s source)', () => {
  const harness = setupHarness();

  it('keeps the listener ports across restarts (adopted from the rules), never duplicating a rule', async () => {
    const h = harness();
    const c = await startCluster(h, 'rs');
    const specs = await twoServices(c, 'rs');
    const names = specs.map(servicePortName);
    const client = await c.node.addPod('rs-c1');

    let proxy = await c.startProxy();
    let synced = await waitForSync(c, proxy, names);
    for (const s of specs) {
      expect(await probeTcp(h, client.ns, s.clusterIP, s.port)).toMatchObject({ ok: true });
    }
    for (let restart = 1; restart <= 2; restart++) {
      const oldPorts = names.map((n) => listenPort(synced.state, n));
      expect(await proxy.stop()).toEqual({ code: 0, signal: null });
      // Stopping leaves the rules (the next process adopts their ports; `cleanup` removes them).
      expect(redirects(await natSave(h, c.node.ns))).toEqual(synced.rules);
      for (const port of oldPorts) expect(await listens(h, c.node.ns, port!)).toBe(false);

      proxy = await c.startProxy();
      // waitForSync: one rule per Service port, each to the port the new listener is bound to.
      synced = await waitForSync(c, proxy, names);
      const newPorts = names.map((n) => listenPort(synced.state, n));
      expect(newPorts).toEqual(oldPorts);
      expect(synced.rules.map((r) => r.toPort).sort()).toEqual([...newPorts].sort());

      const save = await natSave(h, c.node.ns);
      expect(duplicateLines(save)).toEqual([]);
      expect(save.split('\n').filter((l) => l.startsWith(':KUBE-LC-SERVICES '))).toHaveLength(1);
      expect(redirects(save)).toHaveLength(specs.length);
      for (const chain of ['PREROUTING', 'OUTPUT']) {
        expect(jumpsTo(save, chain)).toEqual([`-A ${chain} ${JUMP_PREFIX}`]);
        // ...and it is the chain's first rule.
        expect(save.split('\n').find((l) => l.startsWith(`-A ${chain} `))).toBe(
          `-A ${chain} ${JUMP_PREFIX}`,
        );
      }
      for (const s of specs) {
        expect(await probeTcp(h, client.ns, s.clusterIP, s.port)).toMatchObject({ ok: true });
      }
    }
    expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  });

  it.each([
    ['a node whose nat table is empty', false],
    ['a node with rules of others (a masquerade, a DNS hook)', true],
  ])(
    '`cleanup` leaves the nat table of %s as it was before the proxy first ran',
    async (_what, foreign) => {
      const h = harness();
      const c = await startCluster(h, foreign ? 'cuf' : 'cue');
      const ns = c.node.ns;
      if (foreign) {
        const ipt = (...args: string[]) =>
          h.exec(ns, ['iptables', '-w', '5', '-t', 'nat', ...args]);
        await ipt('-N', 'FOREIGN');
        await ipt('-A', 'FOREIGN', '-j', 'RETURN');
        await ipt('-A', 'PREROUTING', '-p', 'udp', '--dport', '53', '-j', 'FOREIGN');
        await ipt(
          '-A',
          'POSTROUTING',
          '-s',
          c.node.podCidr,
          '!',
          '-d',
          c.node.podCidr,
          '-j',
          'MASQUERADE',
        );
      }
      const before = normalizeSave(await natSave(h, ns));

      const specs = await twoServices(c, foreign ? 'cuf' : 'cue');
      const proxy = await c.startProxy();
      await waitForSync(c, proxy, specs.map(servicePortName));
      expect(await proxy.stop()).toEqual({ code: 0, signal: null });
      expect(normalizeSave(await natSave(h, ns))).not.toBe(before);

      const first = await runCleanup(h, ns);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain('removed its iptables chain and jumps');
      expect(normalizeSave(await natSave(h, ns))).toBe(before);

      // Idempotent: nothing left to remove, and still nothing else touched.
      const second = await runCleanup(h, ns);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toContain('nothing to remove');
      expect(normalizeSave(await natSave(h, ns))).toBe(before);
    },
  );
});
