import { writeFile } from 'node:fs/promises';
import { MAX_BACKENDS, MAX_NODES, parseModes } from '../demo/modes.js';
import { ConfigError, describe } from '../errors.js';
import { parseDuration, parseInteger, parseNumber } from './parse.js';

/** The `demo` flags as yargs hands them over. */
export interface DemoArgs {
  readonly nodes: string;
  readonly clients?: string | undefined;
  readonly rate: string;
  readonly duration: string;
  readonly backends: string;
  readonly 'scale-to': string;
  readonly modes: string;
  readonly 'single-node': boolean;
  readonly drain: boolean;
  readonly json: boolean;
  readonly record?: string | undefined;
}

/**
 * `kube-lc-proxy demo`: runs the embedded scenario and prints the report (and, with --json, the
 * report as one JSON object on the last line, without the samples). Resolves with the exit code:
 * 0 once the run completed (whatever the report says), 1 if it could not run.
 */
export async function demoCommand(args: DemoArgs): Promise<number> {
  const single = args['single-node'];
  const clients = parseInteger('--clients', args.clients ?? (single ? '50' : '12'), 1, 2000);
  const rate = parseNumber('--rate', args.rate, 0.1, 100);
  const durationMs = parseDuration('--duration', args.duration);
  if (durationMs < 10_000 || durationMs > 3_600_000)
    throw new ConfigError('--duration', 'must be from 10s to 1h');
  // The replacement of the rolling update needs one address more than --scale-to.
  const initialBackends = parseInteger(
    '--backends',
    args.backends,
    1,
    single ? 20 : MAX_BACKENDS - 2,
  );
  const scaledBackends = parseInteger(
    '--scale-to',
    args['scale-to'],
    1,
    single ? 40 : MAX_BACKENDS - 1,
  );
  if (scaledBackends <= initialBackends)
    throw new ConfigError('--scale-to', `must be more than --backends (${initialBackends})`);
  const tty = process.stdout.isTTY === true && !args.json;
  const common = {
    clients,
    rate,
    durationSeconds: durationMs / 1000,
    initialBackends,
    scaledBackends,
  };
  try {
    let report: object & { samples?: unknown; modes?: readonly object[] };
    if (single) {
      const { runDemo, formatReport } = await import('../demo/single-node.js');
      const r = await runDemo({
        ...common,
        drain: args.drain,
        out: process.stdout,
        tty,
        quiet: false,
      });
      process.stdout.write(formatReport(r));
      report = r;
    } else {
      const nodes = parseInteger('--nodes', args.nodes, 1, MAX_NODES);
      const modes = parseModes(args.modes);
      if (typeof modes === 'string') throw new ConfigError('--modes', modes);
      const { runNodesDemo, formatNodesReport } = await import('../demo/nodes.js');
      const r = await runNodesDemo({ ...common, nodes, modes, out: process.stdout, tty });
      process.stdout.write(formatNodesReport(r));
      report = r;
    }
    if (args.record !== undefined) await writeFile(args.record, `${JSON.stringify(report)}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(withoutSamples(report))}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    process.stderr.write(`kube-lc-proxy demo: ${describe(err)}\n`);
    return 1;
  }
}

/** The report without its samples (which only --record keeps). */
function withoutSamples(r: object & { samples?: unknown; modes?: readonly object[] }): object {
  const { samples: _samples, ...rest } = r;
  if (rest.modes === undefined) return rest;
  return {
    ...rest,
    modes: rest.modes.map((m) => {
      const { samples: _s, ...mode } = m as { samples?: unknown };
      return mode;
    }),
  };
}
