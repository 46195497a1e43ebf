import { writeFile } from 'node:fs/promises';
import { ConfigError, describe } from '../errors.js';
import { parseDuration, parseInteger, parseNumber } from './parse.js';

/** The `demo` flags as yargs hands them over. */
export interface DemoArgs {
  readonly clients: string;
  readonly rate: string;
  readonly duration: string;
  readonly backends: string;
  readonly 'scale-to': string;
  readonly drain: boolean;
  readonly json: boolean;
  readonly record?: string | undefined;
}

/**
 * `kube-lc-proxy demo`: runs the embedded scenario and prints the report (and, with --json, the
 * report as one JSON object on the last line). Resolves with the exit code: 0 once the run
 * completed (whatever the report says), 1 if it could not run.
 */
export async function demoCommand(args: DemoArgs): Promise<number> {
  const clients = parseInteger('--clients', args.clients, 1, 2000);
  const rate = parseNumber('--rate', args.rate, 0.1, 100);
  const durationMs = parseDuration('--duration', args.duration);
  if (durationMs < 10_000 || durationMs > 3_600_000)
    throw new ConfigError('--duration', 'must be from 10s to 1h');
  const initialBackends = parseInteger('--backends', args.backends, 1, 20);
  const scaledBackends = parseInteger('--scale-to', args['scale-to'], 1, 40);
  if (scaledBackends <= initialBackends)
    throw new ConfigError('--scale-to', `must be more than --backends (${initialBackends})`);
  const { runDemo, formatReport } = await import('../demo/demo.js');
  const tty = process.stdout.isTTY === true && !args.json;
  try {
    const report = await runDemo({
      clients,
      rate,
      durationSeconds: durationMs / 1000,
      initialBackends,
      scaledBackends,
      drain: args.drain,
      out: process.stdout,
      tty,
      quiet: false,
    });
    if (args.record !== undefined) await writeFile(args.record, `${JSON.stringify(report)}\n`);
    process.stdout.write(formatReport(report));
    if (args.json) {
      const { samples: _samples, ...summary } = report;
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`kube-lc-proxy demo: ${describe(err)}\n`);
    return 1;
  }
}
