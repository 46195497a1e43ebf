import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { objectKey } from './normalize.js';
import { classifyError, type WatchRestartReason } from './stats.js';

/** What the owner of a GatedWatch learns about each watch request. All hooks must not throw. */
export interface WatchHooks {
  /** Awaited before each request; false cancels it (the owner is stopping). */
  gate(): Promise<boolean>;
  /** The owner is stopping: a watch that opens now is closed at once. */
  stopping(): boolean;
  /** A watch request is going out. */
  sent(): void;
  /** The watch answered 200: the stream is open. */
  opened(): void;
  /** A well-formed event is about to reach the informer. */
  event(type: WatchEventType): void;
  /** An event was dropped because it could not be valid; `why` names the problem. */
  malformed(why: string): void;
  /** An ERROR event other than 410 (client-node ignores those silently). */
  errorEvent(status: unknown): void;
  /** The watch ended; the informer either re-watches by itself or emits 'error'. */
  ended(reason: WatchRestartReason, err: unknown): void;
  /** client-node's own handler rejected (it is async and nobody awaits it). */
  handlerFailed(err: unknown): void;
}

/** Watch event types of the API. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

const EVENT_TYPES: ReadonlySet<string> = new Set([
  'ADDED',
  'MODIFIED',
  'DELETED',
  'BOOKMARK',
  'ERROR',
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why an event cannot be passed on, or undefined when it is fine. */
function invalid(type: unknown, obj: unknown): string | undefined {
  if (typeof type !== 'string' || !EVENT_TYPES.has(type))
    return `unknown event type ${String(type)}`;
  if (!isRecord(obj)) return `${type} event without an object`;
  if (type === 'ERROR') return undefined;
  if (type === 'BOOKMARK') {
    const meta = obj['metadata'];
    const rv = isRecord(meta) ? meta['resourceVersion'] : undefined;
    return typeof rv === 'string' && rv !== '' ? undefined : 'BOOKMARK without resourceVersion';
  }
  return objectKey(obj) ? undefined : `${type} event without metadata.name/resourceVersion`;
}

function catchAsync(r: unknown, onError: (err: unknown) => void): void {
  if (r instanceof Promise) r.catch(onError);
}

/**
 * The client-node `Watch` that our informers use, with the guards 2.x lacks (each measured in
 * test/k8s/informer*.test.ts):
 * - every request first awaits `hooks.gate()` (rate limit, stop);
 * - asks for bookmarks (`allowWatchBookmarks=true`): 2.x never does, so a quiet watch would
 *   otherwise resume from an old resourceVersion and hit 410 more often;
 * - drops events that would make the informer's async handler throw (a null object, no
 *   metadata): 2.x does not await that handler, so the rejection is unhandled and kills the
 *   process;
 * - never rejects: an exception before the request (auth provider, no cluster) becomes a
 *   `done(err)`, where 2.x would leave an unhandled rejection and a dead informer;
 * - reports how each watch ended (`hooks.ended`), which the informer does not tell apart.
 */
export class GatedWatch extends Watch {
  readonly #hooks: WatchHooks;

  constructor(kc: KubeConfig, hooks: WatchHooks) {
    super(kc);
    this.#hooks = hooks;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const hooks = this.#hooks;
    // Not calling done() here ends the informer's loop on purpose: the owner is stopping.
    if (!(await hooks.gate())) return new AbortController();
    let ended = false;
    let expired = false;
    let errorEvent = false;
    const reasonFor = (err: unknown): WatchRestartReason => {
      if (err !== null && err !== undefined) return classifyError(err);
      if (expired) return 'expired';
      return errorEvent ? 'error-event' : 'eof';
    };
    const end = (err: unknown): void => {
      if (ended) return;
      ended = true;
      hooks.ended(reasonFor(err), err);
      catchAsync(done(err), (e) => hooks.handlerFailed(e));
    };
    const onEvent = (type: string, obj: unknown, raw?: unknown): void => {
      const why = invalid(type, obj);
      if (why !== undefined) return hooks.malformed(why);
      if (type === 'ERROR') {
        const code = (obj as { code?: unknown }).code;
        if (code === 410) expired = true;
        else {
          errorEvent = true;
          hooks.errorEvent(code);
        }
      } else {
        hooks.event(type as WatchEventType);
      }
      catchAsync(callback(type, obj, raw), (e) => hooks.handlerFailed(e));
    };
    hooks.sent();
    try {
      const controller = await super.watch(
        path,
        { ...queryParams, allowWatchBookmarks: true },
        onEvent,
        end,
      );
      // 2.x's stop() aborts only a watch whose headers had arrived; one in flight would stay.
      if (hooks.stopping()) controller.abort();
      else if (!ended) hooks.opened();
      return controller;
    } catch (err) {
      end(err);
      return new AbortController();
    }
  }
}
