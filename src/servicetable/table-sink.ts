import type { Logger } from '../log.js';
import type { UpdateResult } from './builder.js';
import { ServiceTableBuilder } from './builder.js';
import type { ServiceTable } from './types.js';
import type { SourceSink } from '../source/types.js';

export interface TableSinkOptions {
  readonly builder: ServiceTableBuilder;
  readonly logger: Logger;
  /** A new table was built (called one at a time: the next waits for the previous promise). */
  readonly onTable: (table: ServiceTable) => Promise<void>;
}

/** At most this many distinct problems are remembered to log each only once. */
const LOGGED_PROBLEMS_MAX = 10_000;

/**
 * The daemon's SourceSink: records changes in the ServiceTableBuilder, logs each distinct
 * problem with an object once and counts every rejection, and rebuilds the table once per burst
 * of commits (coalesced on the event loop), handing each new table to `onTable` in order.
 */
export class TableSink implements SourceSink {
  readonly #builder: ServiceTableBuilder;
  readonly #log: Logger;
  readonly #onTable: (table: ServiceTable) => Promise<void>;
  readonly #logged = new Set<string>();
  #synced = false;
  #scheduled = false;
  #applying: Promise<void> = Promise.resolve();
  #applied = false;
  /** Objects (or parts of them) rejected, keyed `Kind`. */
  readonly rejectedObjects = new Map<string, number>();
  /** Tables built and handed on. */
  tableApplies = 0;

  constructor(opts: TableSinkOptions) {
    this.#builder = opts.builder;
    this.#log = opts.logger;
    this.#onTable = opts.onTable;
  }

  /** True once a synced commit's table has been applied: the daemon may report ready. */
  get ready(): boolean {
    return this.#applied;
  }

  upsertService(obj: unknown): void {
    this.#report('Service', this.#builder.upsertService(obj));
  }

  deleteService(namespace: string, name: string): void {
    this.#builder.deleteService(namespace, name);
  }

  upsertEndpointSlice(obj: unknown): void {
    this.#report('EndpointSlice', this.#builder.upsertEndpointSlice(obj));
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    this.#builder.deleteEndpointSlice(namespace, name);
  }

  setNodeZone(zone: string | undefined): void {
    this.#builder.setNodeZone(zone);
  }

  commit(synced: boolean): void {
    if (synced) this.#synced = true;
    if (this.#scheduled || !this.#synced) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#applying = this.#applying.then(() => this.#flush());
    });
  }

  /** Resolves once every commit so far has been built and applied. */
  async settled(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.#applying;
      await new Promise((r) => setImmediate(r));
      await last;
    } while (last !== this.#applying || this.#scheduled);
  }

  async #flush(): Promise<void> {
    const before = this.#builder.table;
    const table = this.#builder.build();
    if (table === before && this.#applied) return;
    this.tableApplies++;
    try {
      await this.#onTable(table);
    } catch (err) {
      this.#log.error({ err }, 'applying the service table failed');
    }
    this.#applied = true;
  }

  #report(kind: string, r: UpdateResult): void {
    if (r.skip !== undefined)
      this.#once(`skip ${r.skip.object} ${r.skip.reason}`, () =>
        this.#log.info({ object: r.skip?.object, reason: r.skip?.reason }, 'object skipped'),
      );
    for (const n of r.notes)
      this.#once(`note ${n.object} ${n.reason}`, () =>
        this.#log.info({ object: n.object, reason: n.reason }, 'part of object ignored'),
      );
    if (r.problems.length === 0) return;
    this.rejectedObjects.set(kind, (this.rejectedObjects.get(kind) ?? 0) + 1);
    for (const p of r.problems) {
      this.#once(`problem ${p.object} ${p.field} ${p.message}`, () =>
        this.#log.warn(
          { object: p.object, field: p.field, problem: p.message, applied: r.applied },
          r.applied
            ? 'bad part of object skipped'
            : 'bad object rejected; keeping the last good version',
        ),
      );
    }
  }

  #once(key: string, log: () => void): void {
    if (this.#logged.has(key)) return;
    if (this.#logged.size >= LOGGED_PROBLEMS_MAX) this.#logged.clear();
    this.#logged.add(key);
    log();
  }
}
