/**
 * The network-namespace harness for end-to-end tests. A scenario:
 *
 *   const harness = setupHarness();            // in the describe block: create + teardown hooks
 *   it('...', async () => {
 *     const h = harness();
 *     const node = await h.addNode();          // klp-<run>-node0: br0 10.244.0.1/24
 *     const client = await node.addPod('client');
 *     const backend = await node.addPod('backend');
 *     const server = await startTcpServer(h, backend.ns, [{ name: 'b1', port: 8080 }]);
 *     const proxy = h.spawn(node.ns, [process.execPath, 'bin/kube-lc-proxy.js', ...]);
 *     const conn = await startTcpClient(h, client.ns, '10.96.0.10', 80, { count: 4 });
 *     // conn.backends: where each connection landed
 *   });
 */
import { afterAll, beforeAll } from 'vitest';
import { Harness, type HarnessOptions } from './netns.js';

export * from './fixtures.js';
export * from './netns.js';
export * from './process.js';

/**
 * Registers `beforeAll` (create the harness, sweeping stale namespaces) and `afterAll`
 * (teardown, run even when tests failed) in the enclosing describe block, and returns a getter
 * for the harness. Call it at describe level, not inside a test.
 */
export function setupHarness(opts: HarnessOptions = {}): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await Harness.create(opts);
  });
  afterAll(async () => {
    await harness?.teardown();
  });
  return () => {
    if (!harness) throw new Error('harness not created yet: call it inside a test or hook');
    return harness;
  };
}
