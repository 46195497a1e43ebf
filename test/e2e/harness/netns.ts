/**
 * Network-namespace "clusters" for end-to-end tests (root only).
 *
 * A node is a namespace with a bridge `br0` holding the pod CIDR's first address and a route
 * for the Service CIDR on `br0`. The route matters for processes on the node: their route
 * lookup happens before the nat OUTPUT hook, so without a route a connect to a ClusterIP would
 * fail (ENETUNREACH) before our REDIRECT could see it. A ClusterIP nobody redirects is then
 * ARPed for on the bridge and never answered: the connection times out, as a packet to an
 * unhandled ClusterIP goes nowhere on a real node. (A dummy interface would be the tidier sink,
 * but not every kernel that runs these tests has the dummy driver.)
 *
 * A pod is a namespace with `eth0`, one end of a veth pair whose other end is a port of the
 * node's bridge, and a default route via the bridge address: a pod's packet to a ClusterIP
 * enters the node through `br0` and meets nat PREROUTING, as it would on a node with a bridge
 * CNI.
 *
 * Every interface lives inside a namespace the harness created, so the only names shared with
 * the rest of the machine are the namespace names: `klp-<run id>-<role>`. A run id is fresh per
 * Harness; a marker file holding the owning process id lets a later run tell a namespace of a
 * crashed run (owner gone: swept) from one of a run still going (left alone).
 */
import { spawn as nodeSpawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpawnFn } from '../../../src/iptables/apply.js';
import { NsProcess, execArgv, netnsArgv, type ExecOptions, type ExecResult } from './process.js';

/** Every namespace the harness creates starts with this. */
export const NAMESPACE_PREFIX = 'klp-';
const NAME_RE = /^klp-([0-9a-f]{8})-[a-z0-9-]+$/;
const MARKER_DIR = join(tmpdir(), 'klp-netns-runs');
const MAX_PODS_PER_NODE = 250;
const MAX_NODES = 250;

/** Options of `Harness.create`. */
export interface HarnessOptions {
  /** Routed to each node's `br0`. Default `10.96.0.0/16`. */
  readonly serviceCidr?: string;
  /** Skip the sweep of namespaces of dead runs. Default false. */
  readonly skipSweep?: boolean;
}

/** A node namespace. Created by `Harness.addNode`; its fields never change. */
export interface Node {
  /** The namespace name. */
  readonly ns: string;
  /** `10.244.<n>.0/24`, one /24 per node of the harness. */
  readonly podCidr: string;
  /** The bridge's address, every pod's default gateway: `10.244.<n>.1`. */
  readonly bridgeIP: string;
  readonly serviceCidr: string;
  /** Pods added so far, in order. */
  readonly pods: readonly Pod[];
  /** Adds a pod on this node's bridge. `role` (lowercase letters, digits, `-`) names it. */
  addPod(role?: string): Promise<Pod>;
}

/** A pod namespace. Created by `Node.addPod`; its fields never change. */
export interface Pod {
  readonly ns: string;
  /** Its address on the pod CIDR (eth0). */
  readonly ip: string;
  readonly role: string;
  readonly node: Node;
}

/** True when this process can build namespaces (root). E2E files skip themselves otherwise. */
export function canUseNetns(): boolean {
  return process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (out.status !== 0) return [];
  return out.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

/** Kills every process inside `ns` (children of children too) and deletes it. Synchronous. */
function destroyNamespaceSync(ns: string): boolean {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return spawnSync('ip', ['netns', 'del', ns]).status === 0;
}

function markerPath(runId: string): string {
  return join(MARKER_DIR, `${runId}.pid`);
}

/**
 * Deletes `klp-` namespaces whose run has no live owner (the run crashed or was SIGKILLed before
 * its teardown), with every process inside them. Namespaces of runs still going are left alone:
 * each run writes its marker before creating its first namespace. Returns the names deleted.
 */
export function sweepStaleNamespaces(): string[] {
  const swept: string[] = [];
  const owners = new Map<string, boolean>();
  for (const ns of listNamespaces()) {
    const runId = NAME_RE.exec(ns)?.[1];
    if (runId === undefined) continue;
    let alive = owners.get(runId);
    if (alive === undefined) {
      let pid = NaN;
      try {
        pid = Number(readFileSync(markerPath(runId), 'utf8').trim());
      } catch {
        // no marker: its run is long gone
      }
      alive = Number.isInteger(pid) && pid > 0 && isAlive(pid);
      owners.set(runId, alive);
    }
    if (!alive && destroyNamespaceSync(ns)) swept.push(ns);
  }
  // Markers of runs that are gone, whether or not they left namespaces.
  let markers: string[] = [];
  try {
    markers = readdirSync(MARKER_DIR);
  } catch {
    // no marker dir yet
  }
  for (const file of markers) {
    const runId = /^([0-9a-f]{8})\.pid$/.exec(file)?.[1];
    if (runId === undefined || owners.get(runId) === true) continue;
    let pid: number;
    try {
      pid = Number(readFileSync(markerPath(runId), 'utf8').trim());
    } catch {
      continue;
    }
    if (!isAlive(pid)) rmSync(markerPath(runId), { force: true });
  }
  return swept;
}

/**
 * Owns a set of namespaces and the processes started in them. Build one per test file (see
 * `setupHarness`), add nodes and pods, run programs, and call `teardown()` (idempotent) when
 * done. If the process exits or is killed by SIGINT/SIGTERM/SIGHUP first, an exit hook kills
 * the processes and deletes the namespaces synchronously; after a SIGKILL the next run's sweep
 * does it.
 */
export class Harness {
  /** 8 hex digits, fresh per Harness. */
  readonly runId: string;
  /** `klp-<runId>`: every namespace of this harness starts with it. */
  readonly prefix: string;
  readonly serviceCidr: string;
  readonly #namespaces: string[] = [];
  readonly #processes = new Set<NsProcess>();
  readonly #nodes: Node[] = [];
  #tornDown = false;
  readonly #onExit = (): void => this.#teardownSync();
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.#teardownSync();
    this.#unhook();
    // Re-raise so the process ends as the signal meant, unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  private constructor(opts: HarnessOptions) {
    this.runId = randomBytes(4).toString('hex');
    this.prefix = `${NAMESPACE_PREFIX}${this.runId}`;
    this.serviceCidr = opts.serviceCidr ?? '10.96.0.0/16';
  }

  /** Sweeps stale namespaces (unless told not to), writes this run's marker, installs hooks. */
  static async create(opts: HarnessOptions = {}): Promise<Harness> {
    if (!opts.skipSweep) sweepStaleNamespaces();
    const h = new Harness(opts);
    mkdirSync(MARKER_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(markerPath(h.runId), `${process.pid}\n`);
    process.once('exit', h.#onExit);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, h.#onSignal);
    return h;
  }

  /** Namespaces created so far, in creation order. */
  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  /** Nodes created so far. */
  get nodes(): readonly Node[] {
    return this.#nodes;
  }

  /** Processes started with `spawn` that teardown will stop. */
  get processes(): readonly NsProcess[] {
    return [...this.#processes];
  }

  /**
   * A bare namespace `klp-<runId>-<role>` with only `lo` up: nothing else, no nat table. For
   * tests that need a pristine network stack. `role`: lowercase letters, digits, `-`.
   */
  async addNamespace(role: string): Promise<string> {
    if (this.#tornDown) throw new Error('harness already torn down');
    if (!/^[a-z0-9-]{1,20}$/.test(role)) throw new Error(`bad namespace role ${role}`);
    const ns = `${this.prefix}-${role}`;
    if (this.#namespaces.includes(ns)) throw new Error(`namespace ${ns} exists already`);
    // Recorded before it exists: if `add` half-fails, teardown still tries to delete it.
    this.#namespaces.push(ns);
    await execArgv(['ip', 'netns', 'add', ns]);
    await execArgv(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * A node namespace (see the module comment): bridge `br0` with `10.244.<n>.1/24` and the
   * Service CIDR route, IPv4 forwarding on. `route_localnet` stays off:
   * REDIRECT of a packet arriving on `br0` goes to br0's own address, not to 127.0.0.1.
   */
  async addNode(role = `node${this.#nodes.length}`): Promise<Node> {
    const index = this.#nodes.length;
    if (index >= MAX_NODES) throw new Error('too many nodes');
    const ns = await this.addNamespace(role);
    const net = `10.244.${index}`;
    const ip = (...args: string[]): Promise<ExecResult> => execArgv(['ip', '-n', ns, ...args]);
    await ip('link', 'add', 'br0', 'type', 'bridge');
    await ip('addr', 'add', `${net}.1/24`, 'dev', 'br0');
    await ip('link', 'set', 'br0', 'up');
    await ip('route', 'add', this.serviceCidr, 'dev', 'br0');
    await this.exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const pods: Pod[] = [];
    const node: Node = {
      ns,
      podCidr: `${net}.0/24`,
      bridgeIP: `${net}.1`,
      serviceCidr: this.serviceCidr,
      pods,
      addPod: async (podRole = `pod${index}-${pods.length}`): Promise<Pod> => {
        const k = pods.length;
        if (k >= MAX_PODS_PER_NODE) throw new Error('too many pods on one node');
        const podNs = await this.addNamespace(podRole);
        const podIP = `${net}.${k + 2}`;
        const veth = `veth${k}`;
        // Created in the node namespace with its peer placed straight into the pod's: no
        // interface ever exists in the namespace this test runs in.
        await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podNs);
        await ip('link', 'set', veth, 'master', 'br0');
        await ip('link', 'set', veth, 'up');
        const podIp = (...args: string[]): Promise<ExecResult> =>
          execArgv(['ip', '-n', podNs, ...args]);
        await podIp('addr', 'add', `${podIP}/24`, 'dev', 'eth0');
        await podIp('link', 'set', 'eth0', 'up');
        await podIp('route', 'add', 'default', 'via', `${net}.1`);
        const pod: Pod = { ns: podNs, ip: podIP, role: podRole, node };
        pods.push(pod);
        return pod;
      },
    };
    this.#nodes.push(node);
    return node;
  }

  /** Runs `argv` inside `ns` to completion (see `ExecOptions`: rejects on non-zero by default). */
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return execArgv(netnsArgv(ns, argv), opts);
  }

  /** Starts `argv` inside `ns`; teardown stops it if the test has not. */
  spawn(ns: string, argv: readonly string[]): NsProcess {
    if (this.#tornDown) throw new Error('harness already torn down');
    const p = new NsProcess(ns, argv);
    this.#processes.add(p);
    void p.exited.then(() => this.#processes.delete(p));
    return p;
  }

  /**
   * A `SpawnFn` for `src/iptables/apply.ts` that runs iptables inside `ns`: point the daemon's
   * iptables code at a test namespace without changing it.
   */
  spawnFnIn(ns: string): SpawnFn {
    return (command, args, options) => {
      const [ipCmd, ...ipArgs] = netnsArgv(ns, [command, ...args]);
      return nodeSpawn(ipCmd!, ipArgs, options);
    };
  }

  /**
   * Stops every process (SIGTERM, SIGKILL after 2 s), kills whatever else still runs inside
   * the namespaces, deletes them (pods before nodes) and removes the marker. Idempotent;
   * rejects with every failure after trying everything.
   */
  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    await Promise.all([...this.#processes].map((p) => p.stop('SIGTERM', 2000)));
    const failed: string[] = [];
    for (const ns of [...this.#namespaces].reverse()) {
      const existed = listNamespaces().includes(ns);
      if (existed && !destroyNamespaceSync(ns)) failed.push(ns);
    }
    this.#unhook();
    rmSync(markerPath(this.runId), { force: true });
    if (failed.length > 0) throw new Error(`could not delete namespaces: ${failed.join(', ')}`);
  }

  #teardownSync(): void {
    if (this.#tornDown) return;
    this.#tornDown = true;
    for (const p of this.#processes) {
      if (p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    for (const ns of [...this.#namespaces].reverse()) destroyNamespaceSync(ns);
    rmSync(markerPath(this.runId), { force: true });
  }

  #unhook(): void {
    process.removeListener('exit', this.#onExit);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.removeListener(s, this.#onSignal);
    }
  }
}
