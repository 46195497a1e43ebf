/**
 * Several node namespaces of one "cluster": each node keeps its own bridge and pod CIDR (see
 * harness/netns.ts), and the nodes are wired to each other so that pods, proxies and peers
 * reach across nodes as they do over a real cluster network.
 */
import type { Harness, Node } from '../harness/index.js';

/** Connects node namespaces pairwise with veth links and routes to each other's pod CIDR. */
export async function wireNodes(h: Harness, nodes: readonly Node[]): Promise<void> {
  let link = 0;
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const a = nodes[i]!;
      const b = nodes[j]!;
      const net = `172.31.${link++}`;
      await h.exec(a.ns, [
        'ip',
        'link',
        'add',
        `n${j}`,
        'type',
        'veth',
        'peer',
        'name',
        `n${i}`,
        'netns',
        b.ns,
      ]);
      await h.exec(a.ns, ['ip', 'addr', 'add', `${net}.1/30`, 'dev', `n${j}`]);
      await h.exec(b.ns, ['ip', 'addr', 'add', `${net}.2/30`, 'dev', `n${i}`]);
      await h.exec(a.ns, ['ip', 'link', 'set', `n${j}`, 'up']);
      await h.exec(b.ns, ['ip', 'link', 'set', `n${i}`, 'up']);
      await h.exec(a.ns, ['ip', 'route', 'add', b.podCidr, 'via', `${net}.2`]);
      await h.exec(b.ns, ['ip', 'route', 'add', a.podCidr, 'via', `${net}.1`]);
    }
  }
}
