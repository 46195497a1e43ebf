import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  IptablesCommandError,
  cleanup,
  syncServiceRules,
  type IptablesOptions,
} from '../../src/iptables/apply.js';
import { normalizeSave } from '../../src/iptables/plan.js';
import { renderServiceRule, type RedirectRule } from '../../src/iptables/render.js';
import { silentLogger } from '../../src/log.js';
import {
  canUseNetns,
  probeTcp,
  setupHarness,
  startTcpClient,
  startTcpServer,
  type Harness,
} from './harness/index.js';

const JUMP = '-m comment --comment "kube-lc-proxy service portals" -j KUBE-LC-SERVICES';
const hasNft = spawnSync('nft', ['--version']).status === 0;

describe.runIf(canUseNetns())('iptables rules in a node namespace', () => {
  const harness = setupHarness();

  /** What the daemon gets, pointed into `ns`: a fresh object per call, like a restarted daemon. */
  const iptablesIn = (h: Harness, ns: string): IptablesOptions => ({
    logger: silentLogger(),
    spawn: h.spawnFnIn(ns),
  });
  const natSave = async (h: Harness, ns: string): Promise<string> =>
    (await h.exec(ns, ['iptables-save', '-t', 'nat'])).stdout;
  const iptables = (h: Harness, ns: string, ...args: string[]) =>
    h.exec(ns, ['iptables', '-w', '5', '-t', 'nat', ...args]);
  /** Rules of `chain`, as iptables-save prints them (without the `-A <chain> ` prefix). */
  const chainRules = (save: string, chain: string): string[] =>
    save
      .split('\n')
      .filter((l) => l.startsWith(`-A ${chain} `))
      .map((l) => l.slice(`-A ${chain} `.length));
  /** nf_tables base chains (registered hooks) in the namespace. */
  const nftHooks = async (h: Harness, ns: string): Promise<string[]> =>
    (await h.exec(ns, ['nft', 'list', 'ruleset'])).stdout
      .split('\n')
      .filter((l) => l.includes(' hook '))
      .map((l) => l.trim());

  it('redirects ClusterIPs to the listeners; restart, change, remove and cleanup', async () => {
    const h = harness();
    const node = await h.addNode();
    const client = await node.addPod('client');
    const ns = node.ns;

    // Rules of others (a CNI's masquerade, a DNS hook) that must survive everything we do.
    await iptables(h, ns, '-N', 'FOREIGN');
    await iptables(h, ns, '-A', 'FOREIGN', '-j', 'RETURN');
    await iptables(h, ns, '-A', 'PREROUTING', '-p', 'udp', '--dport', '53', '-j', 'FOREIGN');
    await iptables(
      h,
      ns,
      '-A',
      'POSTROUTING',
      '-s',
      '10.244.0.0/24',
      '!',
      '-d',
      '10.244.0.0/24',
      '-j',
      'MASQUERADE',
    );
    const before = normalizeSave(await natSave(h, ns));

    // Listeners as the proxy opens them: 0.0.0.0, port chosen by the kernel.
    const server = await startTcpServer(h, ns, [{ name: 'svc-a' }, { name: 'svc-b' }]);
    const a: RedirectRule = {
      servicePort: 'default/a:http',
      clusterIP: '10.96.0.10',
      port: 80,
      proxyPort: server.port('svc-a'),
    };
    const b: RedirectRule = {
      servicePort: 'default/b:grpc',
      clusterIP: '10.96.0.11',
      port: 9090,
      proxyPort: server.port('svc-b'),
    };

    expect(await syncServiceRules(iptablesIn(h, ns), [b, a])).toEqual({ rules: 2, skipped: [] });
    const synced = await natSave(h, ns);
    expect(chainRules(synced, 'PREROUTING')).toEqual([JUMP, '-p udp -m udp --dport 53 -j FOREIGN']);
    expect(chainRules(synced, 'OUTPUT')).toEqual([JUMP]);
    expect(chainRules(synced, 'KUBE-LC-SERVICES').map((r) => `-A KUBE-LC-SERVICES ${r}`)).toEqual([
      renderServiceRule(a),
      renderServiceRule(b),
    ]);

    // From a pod (nat PREROUTING) and from the node itself (nat OUTPUT).
    expect(await probeTcp(h, client.ns, '10.96.0.10', 80)).toEqual({ ok: true, backend: 'svc-a' });
    expect(await probeTcp(h, client.ns, '10.96.0.11', 9090)).toEqual({
      ok: true,
      backend: 'svc-b',
    });
    expect(await probeTcp(h, ns, '10.96.0.10', 80)).toEqual({ ok: true, backend: 'svc-a' });

    // Restart: a new daemon syncs the same table. Same text, no duplicate jumps, and connections
    // that were redirected before keep working (conntrack holds their translation).
    const held = await startTcpClient(h, client.ns, '10.96.0.10', 80, { count: 2 });
    expect(held.backends).toEqual(['svc-a', 'svc-a']);
    await syncServiceRules(iptablesIn(h, ns), [a, b]);
    expect(normalizeSave(await natSave(h, ns))).toBe(normalizeSave(synced));
    expect(await held.ping()).toEqual({ alive: [0, 1], dead: [] });
    expect(held.peerClosed()).toEqual([]);

    // Change a rule: Service a now goes to the other listener.
    const aMoved = { ...a, proxyPort: server.port('svc-b') };
    await syncServiceRules(iptablesIn(h, ns), [aMoved, b]);
    expect(await probeTcp(h, client.ns, '10.96.0.10', 80)).toEqual({ ok: true, backend: 'svc-b' });

    // Remove Service b: its ClusterIP is no longer redirected (and nothing else answers).
    await syncServiceRules(iptablesIn(h, ns), [aMoved]);
    const removed = await natSave(h, ns);
    expect(removed).not.toContain('default/b:grpc');
    expect(
      await probeTcp(h, client.ns, '10.96.0.11', 9090, { connectTimeoutMs: 1500 }),
    ).toMatchObject({
      ok: false,
    });
    expect(await probeTcp(h, client.ns, '10.96.0.10', 80)).toEqual({ ok: true, backend: 'svc-b' });

    // Someone inserted a rule above our jump and duplicated another: the next sync puts ours
    // back on top, once, and leaves their rule alone.
    await iptables(h, ns, '-I', 'PREROUTING', '1', '-p', 'udp', '--dport', '5353', '-j', 'RETURN');
    await iptables(
      h,
      ns,
      '-A',
      'OUTPUT',
      '-m',
      'comment',
      '--comment',
      'kube-lc-proxy service portals',
      '-j',
      'KUBE-LC-SERVICES',
    );
    await syncServiceRules(iptablesIn(h, ns), [aMoved]);
    const repaired = await natSave(h, ns);
    expect(chainRules(repaired, 'PREROUTING')).toEqual([
      JUMP,
      '-p udp -m udp --dport 5353 -j RETURN',
      '-p udp -m udp --dport 53 -j FOREIGN',
    ]);
    expect(chainRules(repaired, 'OUTPUT')).toEqual([JUMP]);
    await iptables(h, ns, '-D', 'PREROUTING', '-p', 'udp', '--dport', '5353', '-j', 'RETURN');

    await held.close();
    await server.stop();

    // Cleanup: the nat table is exactly as before the first sync, foreign rules included.
    expect(await cleanup(iptablesIn(h, ns))).toBe(true);
    expect(normalizeSave(await natSave(h, ns))).toBe(before);
    expect(await cleanup(iptablesIn(h, ns))).toBe(false);
  });

  it('cleanup restores a fresh namespace where the nat table did not exist', async () => {
    const h = harness();
    const ns = await h.addNamespace('fresh');
    // iptables-save prints no table that does not exist, but `-t nat` prints the nat table
    // anyway, as four empty ACCEPT built-in chains.
    expect((await h.exec(ns, ['iptables-save'])).stdout).toBe('');
    const before = normalizeSave(await natSave(h, ns));
    expect(before).toBe(
      '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT',
    );
    if (hasNft) expect(await nftHooks(h, ns)).toEqual([]);

    const rule = {
      servicePort: 'default/a:http',
      clusterIP: '10.96.0.10',
      port: 80,
      proxyPort: 40000,
    };
    await syncServiceRules(iptablesIn(h, ns), [rule]);
    expect(await natSave(h, ns)).toContain(renderServiceRule(rule));
    if (hasNft) expect(await nftHooks(h, ns)).toHaveLength(2); // PREROUTING and OUTPUT, created for us

    expect(await cleanup(iptablesIn(h, ns))).toBe(true);
    expect(normalizeSave(await natSave(h, ns))).toBe(before);
    // The built-in chains our sync created are gone too: no nat hook left registered.
    if (hasNft) expect(await nftHooks(h, ns)).toEqual([]);
  });

  it('comments that need quoting and escaping round-trip through iptables-restore', async () => {
    const h = harness();
    const ns = await h.addNamespace('quoting');
    const rules: RedirectRule[] = [
      { servicePort: `we"ird/n'a\\me:p o`, clusterIP: '10.96.0.20', port: 1, proxyPort: 2 },
      { servicePort: 'x'.repeat(300), clusterIP: '10.96.0.21', port: 1, proxyPort: 2 },
      { servicePort: 'line\n-A OUTPUT -j DROP', clusterIP: '10.96.0.22', port: 1, proxyPort: 2 },
    ];
    await syncServiceRules(iptablesIn(h, ns), rules);
    const save = await natSave(h, ns);
    expect(chainRules(save, 'KUBE-LC-SERVICES').map((r) => `-A KUBE-LC-SERVICES ${r}`)).toEqual(
      rules.map(renderServiceRule),
    );
    expect(chainRules(save, 'OUTPUT')).toEqual([JUMP]);
    expect(await cleanup(iptablesIn(h, ns))).toBe(true);
  });

  it('a failing transaction changes nothing and reports exit code and stderr', async () => {
    const h = harness();
    const ns = await h.addNamespace('busy');
    const rule = {
      servicePort: 'default/a:http',
      clusterIP: '10.96.0.10',
      port: 80,
      proxyPort: 40000,
    };
    await syncServiceRules(iptablesIn(h, ns), [rule]);
    // A foreign reference to our chain: its delete must fail, and with it the whole cleanup.
    await iptables(h, ns, '-N', 'FOREIGN');
    await iptables(h, ns, '-A', 'FOREIGN', '-j', 'KUBE-LC-SERVICES');
    const before = await natSave(h, ns);
    const err = (await cleanup(iptablesIn(h, ns)).catch((e: unknown) => e)) as IptablesCommandError;
    expect(err).toBeInstanceOf(IptablesCommandError);
    expect(err.code).toBe('KLP_IPTABLES');
    expect(err.exitCode).not.toBe(0);
    expect(err.stderr).toMatch(/busy|in use|failed/i);
    expect(normalizeSave(await natSave(h, ns))).toBe(normalizeSave(before));

    await iptables(h, ns, '-F', 'FOREIGN');
    await iptables(h, ns, '-X', 'FOREIGN');
    expect(await cleanup(iptablesIn(h, ns))).toBe(true);
    expect(await natSave(h, ns)).not.toContain('KUBE-LC');
  });
});
