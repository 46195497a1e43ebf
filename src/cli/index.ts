import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import yargs, { type Argv } from 'yargs';
import { checkArgv, type FlagTypes } from './argv.js';
import { ConfigError, describe } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import { parseRunConfig, type RunArgs } from './config.js';
import type { DemoArgs } from './demo.js';
import type { EarlyAdoption } from '../proxy/early-bind.js';
import { parseHostPort } from './parse.js';

/**
 * Exit codes: 0 done, 1 failed at run time (bad manifests file, address in use, proxy not
 * reachable), 2 bad usage (unknown or bad flag), 70 an internal error (a bug: an uncaught
 * exception, logged before the exit).
 */
export const EXIT_USAGE = 2;

/** A usage error yargs found (unknown flag, missing command, bad choice). */
class UsageError extends Error {}

function runOptions(y: Argv): Argv<RunArgs> {
  return (
    y
      .option('source', {
        type: 'string',
        default: 'k8s',
        describe:
          'Where Services and EndpointSlices come from: k8s (the API server) or file:PATH (a manifests file, watched for edits)',
      })
      .option('intercept', {
        type: 'string',
        choices: ['iptables', 'none'],
        defaultDescription: 'iptables with --source k8s, none with file:',
        describe:
          'iptables: REDIRECT ClusterIP traffic to listeners on 0.0.0.0; none: listen on each ClusterIP:port directly',
      })
      .option('metrics-address', {
        type: 'string',
        default: '127.0.0.1:9901',
        describe: 'HOST:PORT for /metrics, /healthz, /readyz and /debug/state',
      })
      .option('log-level', {
        type: 'string',
        default: 'info',
        choices: LOG_LEVELS,
        describe: 'Log level (JSON logs on stdout)',
      })
      .option('shutdown-grace', {
        type: 'string',
        default: '30s',
        describe: 'On SIGTERM/SIGINT, how long to wait for open connections before closing them',
      })
      .option('connect-timeout', {
        type: 'string',
        default: '1s',
        describe: 'Timeout of each dial to an endpoint',
      })
      .option('connect-attempts', {
        type: 'string',
        default: '3',
        describe:
          'Endpoints tried per client connection (on refusal or timeout) before it is reset',
      })
      .option('slow-start-window', {
        type: 'string',
        default: '0',
        describe: "Ramp a newly ready endpoint's weight from 10% to 100% over this long (0 = off)",
      })
      .option('kubeconfig', {
        type: 'string',
        default: process.env.KUBECONFIG,
        defaultDescription: '$KUBECONFIG, else in-cluster config',
        describe: 'kubeconfig file for --source k8s',
      })
      .option('node-name', {
        type: 'string',
        default: process.env.NODE_NAME,
        defaultDescription: '$NODE_NAME',
        describe:
          'This node, for internalTrafficPolicy: Local and topology hints, and its name in the cluster view (default there: the host name)',
      })
      .option('all-services', {
        type: 'boolean',
        default: false,
        describe:
          'Select every Service kube-proxy would, instead of only those labelled service.kubernetes.io/service-proxy-name=kube-lc-proxy',
      })
      .option('sync-min-interval', {
        type: 'string',
        default: '1s',
        describe: 'Shortest time between two iptables syncs (changes in between are coalesced)',
      })
      .option('h2-drain', {
        type: 'boolean',
        default: true,
        describe:
          'Detect HTTP/2 cleartext (h2c, gRPC) connections and drain them with GOAWAY; --no-h2-drain treats every connection as opaque TCP',
      })
      .option('max-connection-age', {
        type: 'string',
        default: '10m',
        describe:
          'Drain h2c connections older than this, with ±10% jitter per connection (0 = never)',
      })
      .option('drain-grace', {
        type: 'string',
        default: '30s',
        describe:
          'How long a drained connection may stay open for its streams to end before it is closed anyway',
      })
      .option('drain-max-concurrent', {
        type: 'string',
        default: '10%',
        describe:
          "At most this share (or count, e.g. 5) of a Service port's connections drain at once (at least 1)",
      })
      .option('drain-rate', {
        type: 'string',
        default: '20/s',
        describe:
          'At most this many drains start per second per Service port (0 = no limit). Drains of leaving endpoints bypass both limits',
      })
      .option('proxy-port-range', {
        type: 'string',
        default: '61000-65535',
        describe:
          'FIRST-LAST: ports for new listeners with --intercept iptables (a Service port keeps its port across restarts; ports of the rules in place are adopted). Keep it outside the ephemeral range (net.ipv4.ip_local_port_range) and the NodePort range; non-redirected connections to it are dropped',
      })
      .option('set-tcp-migrate-req', {
        type: 'boolean',
        default: true,
        describe:
          'With --intercept iptables, set net.ipv4.tcp_migrate_req=1 at start, so connections queued on a closing listener move to the new process during an upgrade; --no-set-tcp-migrate-req leaves the sysctl as it is',
      })
      .option('rebalance-threshold', {
        type: 'string',
        default: '1.2',
        describe:
          "Drain the excess from the busiest endpoints when one holds more than this times its share of a Service port's h2c connections (max/mean when weights are equal) and at least 2 more; 0 = off",
      })
      // Cluster view (issue 9).
      .option('peers', {
        type: 'string',
        describe:
          "Cluster view: the other proxies' --metrics-address, HOST:PORT,... (this node's own is skipped). They exchange connection counts so picks and rebalance see the whole cluster. With --source k8s and no --peers, the peers are found through a Lease",
      })
      .option('peer-secret-file', {
        type: 'string',
        describe:
          'File holding the secret every peer shares (at least 16 bytes); required with --peers, and turns the cluster view on with --source k8s',
      })
      .option('cluster-sync-interval', {
        type: 'string',
        default: '2s',
        describe:
          'How often counts are exchanged with every peer; a view older than 3 intervals falls back to node-local counts',
      })
      .option('cluster-lease-namespace', {
        type: 'string',
        default: process.env.POD_NAMESPACE ?? 'kube-lc-proxy',
        defaultDescription: '$POD_NAMESPACE, else kube-lc-proxy',
        describe:
          'With --source k8s and --peer-secret-file (no --peers): namespace of the Lease that elects the aggregator of the cluster view',
      })
      .option('half-closed-timeout', {
        type: 'string',
        default: '1h',
        describe:
          "After one side's FIN, close the connection at most this long later (0 = never; default: kube-proxy's conntrack CLOSE_WAIT timeout)",
      })
      .option('idle-timeout', {
        type: 'string',
        default: '24h',
        describe:
          "No byte either way for this long: close the connection, or drain it with GOAWAY if h2c (0 = never; default: kube-proxy's conntrack established timeout)",
      })
      .option('workers', {
        type: 'string',
        default: 'auto',
        describe:
          'Worker threads for the data path (1-64; 0: on the main thread); auto: the CPUs the container may use (its cgroup CPU quota, rounded up)',
      })
      .option('worker-heap-limit', {
        type: 'string',
        default: '512Mi',
        describe:
          'V8 heap limit of each worker thread (64Mi to 64Gi); a worker past it is replaced and its connections are lost (counted)',
      })
      .option('max-manifests-bytes', {
        type: 'string',
        default: '4Mi',
        describe:
          'Largest manifests file read with --source file: (4Mi, 512Ki, 20000000); a bigger one, or one too costly to parse, is rejected',
      })
      .option('metrics-per-endpoint', {
        type: 'boolean',
        default: false,
        describe:
          'Export per-endpoint series for every Service port, idle ones included (many series on large clusters); by default series are per Service port, for the ports in use',
      }) as unknown as Argv<RunArgs>
  );
}

/** The string and boolean flags of `command`, as its yargs builder defines them. */
function flagTypes(command: string | undefined): FlagTypes {
  // The demo's flags all take values except --drain and --json (see its builder below).
  if (command === 'demo')
    return {
      string: ['clients', 'rate', 'duration', 'backends', 'scale-to', 'record'],
      boolean: [],
    };
  const y = yargs();
  const built = command === 'run' ? runOptions(y) : command === 'status' ? statusOptions(y) : y;
  // getOptions() is public yargs API that its type definitions leave out.
  return (built as unknown as { getOptions(): FlagTypes }).getOptions();
}

function statusOptions(y: Argv): Argv {
  return y.option('metrics-address', {
    type: 'string',
    default: '127.0.0.1:9901',
    describe: 'HOST:PORT of the running proxy',
  });
}

/** Rejects a host name that does not resolve, naming the flag (instead of a bare ENOTFOUND). */
async function resolvable(flag: string, host: string | undefined): Promise<void> {
  if (host === undefined || isIP(host) !== 0) return;
  try {
    await lookup(host);
  } catch (err) {
    throw new ConfigError(flag, `cannot resolve ${JSON.stringify(host)}: ${describe(err)}`);
  }
}

/** Runs the CLI with `argv` (without node and script). Resolves with the exit code. */
export async function main(
  argv: string[],
  opts: { readonly prebound?: EarlyAdoption } = {},
): Promise<number> {
  let code = 0;
  const cli = yargs()
    .scriptName('kube-lc-proxy')
    .usage(
      '$0 <command> [flags]\n\nLeast-connection proxy for Kubernetes ClusterIP Services that rebalances gRPC.',
    )
    .command('run', 'Run the proxy', runOptions, async (args) => {
      const early = opts.prebound;
      let config;
      try {
        config = parseRunConfig(args as unknown as RunArgs);
        await resolvable('--metrics-address', config.daemon.metricsAddress?.host);
      } catch (err) {
        if (early !== undefined)
          (await import('../proxy/early-bind.js')).closePrebound(early.listeners);
        throw err;
      }
      // Listeners bin/ bound for the rules in place before anything else loaded (early-bind).
      let prebound = early;
      if (prebound !== undefined && config.daemon.intercept !== 'iptables') {
        (await import('../proxy/early-bind.js')).closePrebound(prebound.listeners);
        prebound = undefined;
      }
      const { run } = await import('./run.js');
      code = await run(config, prebound);
    })
    .command(
      'status',
      'Print the balance table of a running proxy (like ipvsadm -Ln)',
      statusOptions,
      async (args) => {
        const { status } = await import('./status.js');
        code = await status(parseHostPort('--metrics-address', String(args['metrics-address'])));
      },
    )
    .command(
      'cleanup',
      'Remove every iptables chain and jump the proxy added, and nothing else',
      {},
      async () => {
        const { cleanupCommand } = await import('./cleanup.js');
        code = await cleanupCommand();
      },
    )
    .command(
      'demo',
      'Watch the problem and the fix on this machine: gRPC clients spread over several nodes, balanced by kube-proxy-like random choice, node-local least connection and the cluster view, side by side, through a scale-out and a rolling update (Linux, uses 127.0.100.0/24)',
      (y) =>
        y
          .option('nodes', {
            type: 'string',
            default: '6',
            describe:
              'Nodes per mode: a proxy process (or a kube-proxy-like forwarder) each, with its own clients',
          })
          .option('clients', {
            type: 'string',
            defaultDescription: '12, or 50 with --single-node',
            describe:
              'grpc-js clients per mode, each with one long-lived channel, spread evenly over the nodes',
          })
          .option('rate', { type: 'string', default: '10', describe: 'RPCs per second per client' })
          .option('duration', {
            type: 'string',
            default: '40s',
            describe: 'Length of the whole run (phases scale with it)',
          })
          .option('backends', { type: 'string', default: '2', describe: 'Backends at the start' })
          .option('scale-to', {
            type: 'string',
            default: '4',
            describe: 'Backends after the scale-out',
          })
          .option('modes', {
            type: 'string',
            default: 'random,node-local,cluster',
            describe:
              'Which balancing to show, side by side: random (kube-proxy), node-local, cluster',
          })
          .option('single-node', {
            type: 'boolean',
            default: false,
            describe:
              'Instead: one proxy in this process with every client on its node (the drain mechanism)',
          })
          .option('drain', {
            type: 'boolean',
            default: true,
            describe:
              'With --single-node: drain with GOAWAY; --no-drain runs the same script as a plain L4 balancer would (the problem)',
          })
          .option('json', {
            type: 'boolean',
            default: false,
            describe: 'Print the report as one JSON object on the last line',
          })
          .option('record', {
            type: 'string',
            describe: 'Write the full report with connection samples to this JSON file',
          }),
      async (args) => {
        const { demoCommand } = await import('./demo.js');
        code = await demoCommand(args as unknown as DemoArgs);
      },
    )
    .demandCommand(1, 'Name a command: run, status, cleanup or demo.')
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      // Throwing stops yargs from running the command after a usage error.
      if (err !== undefined && err !== null) throw err;
      throw new UsageError(msg);
    });
  try {
    await cli.parseAsync(checkArgv(argv, flagTypes(argv[0])));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`kube-lc-proxy: ${err.message}\nRun kube-lc-proxy --help for usage.\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`kube-lc-proxy: ${describe(err)}\n`);
    return 1;
  }
  return code;
}
