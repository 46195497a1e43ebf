import type { ServerResponse } from 'node:http';
import type { FieldSelector } from './field-selector.js';
import { kindOf } from './kinds/index.js';
import type { Rendering } from './replies.js';
import type { LabelSelector } from './selector.js';
import { statusObject } from './status.js';
import {
  RESOURCES,
  type ObjectStore,
  type Resource,
  type StoreEvent,
  type StoredObject,
} from './store.js';
import { toTable } from './table.js';

/** What a watch request asked for. */
export interface WatchParams {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly selector: LabelSelector;
  /** metadata.name / metadata.namespace selector (kubectl get NAME -w, kubectl delete --wait). */
  readonly fields?: FieldSelector;
  readonly bookmarks: boolean;
  /** Objects as Tables (kubectl get -w asks for `as=Table`); default the objects themselves. */
  readonly rendering?: Rendering;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * One open watch response: writes one JSON event per line, filters changes by namespace and
 * label selector, and turns "starts matching" into ADDED and "stops matching" into DELETED
 * (carrying the previous content with the event's RV, as the apiserver cacher does).
 * Owned by the server; `close` is idempotent.
 */
export class WatchStream {
  readonly params: WatchParams;
  readonly #res: ServerResponse;
  readonly #store: ObjectStore;
  #unsubscribe: (() => void) | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;
  readonly #onClose: (w: WatchStream) => void;

  constructor(
    res: ServerResponse,
    store: ObjectStore,
    params: WatchParams,
    onClose: (w: WatchStream) => void,
  ) {
    this.#res = res;
    this.#store = store;
    this.params = params;
    this.#onClose = onClose;
    res.on('close', () => this.#cleanup());
  }

  /**
   * Replays history after `from` (or the current state as ADDED when `from` is undefined)
   * and subscribes to live changes, in the same tick so nothing is missed.
   */
  begin(from: number | undefined): void {
    if (from === undefined) {
      for (const o of this.#store.list(this.params.resource)) {
        if (this.#selected(o)) this.#write('ADDED', o);
      }
    } else {
      for (const ev of this.#store.eventsSince(this.params.resource, from)) this.#dispatch(ev);
    }
    this.#unsubscribe = this.#store.subscribe((ev) => this.#dispatch(ev));
  }

  /** Ends the stream after `ms` (the `timeoutSeconds` parameter). */
  endAfter(ms: number): void {
    this.#timer(() => this.end(), ms);
  }

  /** Sends a BOOKMARK every `ms` when the client asked for bookmarks. */
  bookmarkEvery(ms: number): void {
    if (!this.params.bookmarks || ms <= 0) return;
    const t = setInterval(() => this.bookmark(), ms);
    this.#timers.add(t);
  }

  /** Sends one BOOKMARK at the current RV, only if the client asked for bookmarks. */
  bookmark(): boolean {
    if (!this.params.bookmarks) return false;
    const { kind, apiVersion } = RESOURCES[this.params.resource];
    const rv = String(this.#store.resourceVersion);
    this.writeLine(
      JSON.stringify({
        type: 'BOOKMARK',
        object: { kind, apiVersion, metadata: { resourceVersion: rv } },
      }),
    );
    return true;
  }

  /** Writes an ERROR event carrying a Status with `code`. */
  errorEvent(code: number, message: string): void {
    this.writeLine(JSON.stringify({ type: 'ERROR', object: statusObject(code, message) }));
  }

  /** Writes `line` and a newline as is (for garbage and malformed events). */
  writeLine(line: string): void {
    if (this.#closed || this.#res.destroyed) return;
    this.#res.write(`${line}\n`);
  }

  /** Clean end of the stream (terminating chunk). */
  end(): void {
    if (!this.#res.destroyed && !this.#res.writableEnded) this.#res.end();
    this.#cleanup();
  }

  /** Drops the TCP connection mid-stream, without a terminating chunk. */
  destroy(): void {
    this.#res.socket?.destroy();
    this.#res.destroy();
    this.#cleanup();
  }

  #timer(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #selected(o: StoredObject): boolean {
    const { namespace, selector, fields } = this.params;
    if (namespace !== undefined && o.metadata.namespace !== namespace) return false;
    return selector.matches(o.metadata.labels) && (fields?.matches(o) ?? true);
  }

  #dispatch(ev: StoreEvent): void {
    if (ev.resource !== this.params.resource) return;
    const now = this.#selected(ev.object);
    const before = ev.prev !== undefined && this.#selected(ev.prev);
    if (ev.type === 'DELETED') {
      if (before) this.#write('DELETED', ev.object);
    } else if (now && before) {
      this.#write('MODIFIED', ev.object);
    } else if (now) {
      this.#write('ADDED', ev.object);
    } else if (before && ev.prev) {
      const rv = String(ev.rv);
      this.#write('DELETED', {
        ...ev.prev,
        metadata: { ...ev.prev.metadata, resourceVersion: rv },
      });
    }
  }

  #write(type: EventType, o: StoredObject): void {
    const rendering = this.params.rendering;
    if (rendering?.table) {
      const spec = kindOf(this.params.resource);
      const table = toTable(spec, [o], o.metadata.resourceVersion, rendering.include);
      this.writeLine(JSON.stringify({ type, object: table }));
      return;
    }
    const { kind, apiVersion } = RESOURCES[this.params.resource];
    this.writeLine(JSON.stringify({ type, object: { kind, apiVersion, ...o } }));
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#onClose(this);
  }
}
