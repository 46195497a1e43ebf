import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { K8sSource, type K8sSourceOptions } from '../../src/source/k8s.js';
import type { SourceSink } from '../../src/source/types.js';
import type { FakeApiServer } from '../support/apiserver/index.js';
import { kubeConfigFor } from './helpers.js';

/** A SourceSink that records every call and keeps the resulting state. */
export class RecordingSink implements SourceSink {
  readonly services = new Map<string, Record<string, unknown>>();
  readonly slices = new Map<string, Record<string, unknown>>();
  /** Every call in order, e.g. `upsertService default/web`, `commit true`. */
  readonly calls: string[] = [];
  zone: string | undefined;

  upsertService(obj: unknown): void {
    const k = key(obj);
    this.services.set(k, obj as Record<string, unknown>);
    this.calls.push(`upsertService ${k}`);
  }
  deleteService(namespace: string, name: string): void {
    this.services.delete(`${namespace}/${name}`);
    this.calls.push(`deleteService ${namespace}/${name}`);
  }
  upsertEndpointSlice(obj: unknown): void {
    const k = key(obj);
    this.slices.set(k, obj as Record<string, unknown>);
    this.calls.push(`upsertEndpointSlice ${k}`);
  }
  deleteEndpointSlice(namespace: string, name: string): void {
    this.slices.delete(`${namespace}/${name}`);
    this.calls.push(`deleteEndpointSlice ${namespace}/${name}`);
  }
  setNodeZone(zone: string | undefined): void {
    this.zone = zone;
    this.calls.push(`setNodeZone ${zone}`);
  }
  commit(synced: boolean): void {
    this.calls.push(`commit ${synced}`);
  }

  /** Calls other than commits. */
  changes(): string[] {
    return this.calls.filter((c) => !c.startsWith('commit'));
  }
  /** Whether a synced commit happened. */
  get synced(): boolean {
    return this.calls.includes('commit true');
  }
  /** Port of a stored Service's first port, for update checks. */
  servicePort(k: string): unknown {
    const spec = this.services.get(k)?.['spec'] as { ports?: { port?: unknown }[] } | undefined;
    return spec?.ports?.[0]?.port;
  }
}

function key(obj: unknown): string {
  const m = (obj as { metadata?: { namespace?: string; name?: string } }).metadata;
  return `${m?.namespace ?? ''}/${m?.name ?? ''}`;
}

/** A parsed pino line. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A debug-level pino logger that keeps its lines in memory. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Fast settings for tests: short back-off, a loose rate cap. */
export const FAST: Pick<K8sSourceOptions, 'backoff' | 'rateLimit'> = {
  backoff: { initialMs: 20, maxMs: 100, resetAfterMs: 1000 },
  rateLimit: { burst: 20, perSecond: 50 },
};

/** A running K8sSource against `api` (plain http, in-memory KubeConfig) and its sink. */
export interface Running {
  readonly source: K8sSource;
  readonly sink: RecordingSink;
  readonly lines: LogLine[];
}

/** Starts a K8sSource on `api` with FAST settings unless overridden. */
export async function startSource(
  api: FakeApiServer,
  opts: Partial<K8sSourceOptions> = {},
): Promise<Running> {
  const { logger, lines } = memoryLogger();
  const source = new K8sSource({ logger, kubeConfig: kubeConfigFor(api), ...FAST, ...opts });
  const sink = new RecordingSink();
  await source.start(sink);
  return { source, sink, lines };
}
