import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { adoptRedirects } from '../iptables/adopt.js';
import { saveNat, type IptablesOptions } from '../iptables/apply.js';
import type { RedirectRule } from '../iptables/render.js';
import { listeningPorts } from './listening-ports.js';

/**
 * The first thing `run` does with intercept `iptables`, before it loads the rest of the daemon:
 * read the REDIRECT rules a previous process left and listen on their ports. After a stop and
 * start the rules point at ports nobody listens on, so clients are refused until this runs; the
 * daemon's modules (metrics, logging, the Kubernetes client) take far longer to load than Node.js
 * takes to start. This module imports only what that needs.
 *
 * Each listener holds the clients it accepts (paused, untouched) until the daemon claims it
 * (ServicePortProxy.adoptServer) and learns where the endpoints are.
 */
export interface PreboundListener {
  readonly rule: RedirectRule;
  readonly server: Server;
  readonly address: AddressInfo;
  /** Clients accepted before the daemon claimed the listener. */
  readonly held: Socket[];
}

/**
 * What `bindAdoptedEarly` found: every rule in place (`undefined` when the rules could not be
 * read), and the listeners it bound (not those a running process already listens on).
 */
export interface EarlyAdoption {
  readonly rules: readonly RedirectRule[] | undefined;
  readonly listeners: readonly PreboundListener[];
}

/** Clients held, at most, per listener before the daemon claims it; more are reset. */
const EARLY_HELD_MAX = 4096;

/** Binds one port like ServicePortProxy.listen does (same options), holding its clients. */
function bindHolding(port: number, host: string): Promise<{ server: Server; held: Socket[] }> {
  const held: Socket[] = [];
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
  server.on('connection', (client: Socket) => {
    client.on('error', () => {});
    if (held.length < EARLY_HELD_MAX) held.push(client);
    else client.resetAndDestroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, reusePort: true }, () => {
      server.removeListener('error', reject);
      server.on('error', () => {});
      resolve({ server, held });
    });
  });
}

/**
 * Reads the rules and binds every port they redirect to, on `host` (0.0.0.0). Never throws:
 * a failure to read the rules or to bind a port leaves that port to the daemon, which logs and
 * retries it. Nothing is logged here: the logger does not exist yet (the daemon logs what it
 * adopted).
 */
export async function bindAdoptedEarly(
  opts: Omit<IptablesOptions, 'logger'> = {},
  host = '0.0.0.0',
): Promise<EarlyAdoption> {
  let rules: RedirectRule[];
  try {
    // saveNat logs nothing; the logger is required by the type only.
    const quiet = { debug() {}, info() {} } as unknown as IptablesOptions['logger'];
    rules = adoptRedirects(await saveNat({ ...opts, logger: quiet }));
  } catch {
    return { rules: undefined, listeners: [] };
  }
  // A port something already listens on belongs to a process still running (a handover): it
  // keeps serving, and the daemon binds next to it once it knows the endpoints, so no client
  // waits on a listener that cannot serve it yet.
  const busy = await listeningPorts();
  const out: PreboundListener[] = [];
  await Promise.all(
    rules.map(async (rule) => {
      if (busy.has(rule.proxyPort)) return;
      try {
        const { server, held } = await bindHolding(rule.proxyPort, host);
        out.push({ rule, server, held, address: server.address() as AddressInfo });
      } catch {
        // The daemon binds it again (and logs why it cannot).
      }
    }),
  );
  return { rules, listeners: out };
}

/**
 * Whether `argv` (without node and script) is a `run` that will intercept with iptables: the
 * `--intercept` flag, else the default (iptables with the k8s source, which is the default
 * source). Pure; used by bin/ to bind before yargs and the daemon load. A wrong guess costs
 * nothing: `main` closes listeners the parsed config does not want.
 */
export function runsWithIptables(argv: readonly string[]): boolean {
  if (argv[0] !== 'run') return false;
  let intercept: string | undefined;
  let source = 'k8s';
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    if (flag === '--intercept') intercept = inline ?? argv[++i];
    else if (flag === '--source') source = inline ?? argv[++i] ?? source;
    else if (flag === '--') break;
  }
  return (intercept ?? (source === 'k8s' ? 'iptables' : 'none')) === 'iptables';
}

/** Closes listeners bound early that the daemon will not take (their clients are reset). */
export function closePrebound(listeners: readonly PreboundListener[]): void {
  for (const l of listeners) {
    for (const c of l.held) if (!c.destroyed) c.resetAndDestroy();
    l.server.close();
  }
}
