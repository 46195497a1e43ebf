/**
 * The stand-in API server as a process inside a namespace (fixtures/apiserver-control.ts),
 * driven from the test over its stdin/stdout: the proxy reaches it over the node's bridge and
 * no traffic ever crosses the namespace the tests run in.
 */
import { fileURLToPath } from 'node:url';
import type { Faults, Resource } from '../../support/apiserver/index.js';
import { writeKubeconfig } from '../../support/apiserver/kubeconfig.js';
import type { Harness, NsProcess } from '../harness/index.js';

/** Path of the control program. */
export const APISERVER_PROGRAM = fileURLToPath(
  new URL('../fixtures/apiserver-control.ts', import.meta.url),
);

/** One request the stand-in received, as the control program summarises it. */
export interface ApiRequest {
  readonly verb: 'list' | 'watch' | 'get' | 'other';
  readonly resource: Resource | null;
  readonly path: string;
  readonly resourceVersion: string | null;
  readonly labelSelector: string | null;
  /** Date.now() on arrival. */
  readonly time: number;
  /** The reply's status; 0 while it is still open (a watch) or not answered yet. */
  readonly status: number;
}

/** A running stand-in API server; every method is one command to the control program. */
export interface ApiServerProcess {
  readonly process: NsProcess;
  /** `http://<host>:<port>`. */
  readonly url: string;
  upsert(resource: Resource, object: object): Promise<string>;
  delete(resource: Resource, namespace: string | undefined, name: string): Promise<boolean>;
  /** Stops serving; `reset` accepts and resets every connection, counting them. Resolves with Date.now(). */
  stop(outage: 'reset' | 'refuse'): Promise<number>;
  /** Serves again on the same port, state kept. Resolves with Date.now() once it listens. */
  restart(): Promise<number>;
  setFaults(faults: Partial<Faults>): Promise<void>;
  /** Date.now() of every connection accepted and reset while stopped in `reset` mode. */
  outageConnections(): Promise<number[]>;
  requests(): Promise<ApiRequest[]>;
  watchCount(): Promise<number>;
  /** Writes a kubeconfig for it (plain http) to `file`. */
  writeKubeconfig(file: string): Promise<string>;
}

/**
 * Starts the stand-in in `ns`, listening on `host` (an address of that namespace), and resolves
 * once it listens. Each command waits at most `commandTimeoutMs` (default 10 s) for its reply.
 */
export async function startApiServer(
  h: Harness,
  ns: string,
  host: string,
  opts: { maxSeconds?: number; commandTimeoutMs?: number } = {},
): Promise<ApiServerProcess> {
  const p = h.spawn(ns, [
    process.execPath,
    APISERVER_PROGRAM,
    '--host',
    host,
    '--max-seconds',
    String(opts.maxSeconds ?? 300),
  ]);
  const ready = await p.waitForEvent((e) => e.event === 'ready', 15_000);
  const url = String(ready.url);
  const commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
  let nextId = 1;
  const call = async <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> => {
    const id = nextId++;
    p.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    const reply = await p.waitForEvent((e) => e.id === id, commandTimeoutMs);
    if (reply.ok !== true) throw new Error(`stand-in API server: ${cmd}: ${String(reply.error)}`);
    return reply.result as T;
  };
  return {
    process: p,
    url,
    upsert: async (resource, object) =>
      (await call<{ resourceVersion: string }>('upsert', { resource, object })).resourceVersion,
    delete: async (resource, namespace, name) =>
      (await call<{ deleted: boolean }>('delete', { resource, namespace, name })).deleted,
    stop: async (outage) => (await call<{ at: number }>('stop', { outage })).at,
    restart: async () => (await call<{ at: number }>('restart')).at,
    setFaults: async (faults) => {
      await call('faults', { faults });
    },
    outageConnections: () => call<number[]>('outageConnections'),
    requests: () => call<ApiRequest[]>('requests'),
    watchCount: () => call<number>('watchCount'),
    writeKubeconfig: (file) => writeKubeconfig({ url, ca: undefined, token: undefined }, file),
  };
}
