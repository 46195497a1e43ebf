import type { RequestVerb } from './request-info.js';
import type { Resource } from './store.js';

/** Options of `FakeApiServer.start`. */
export interface FakeApiServerOptions {
  /** HTTPS with a generated self-signed certificate for IP:`host` (see `ca`). */
  readonly tls?: boolean;
  /** Require `Authorization: Bearer <token>`; anything else gets 401 + Status. */
  readonly token?: string;
  /** Send a BOOKMARK this often on watches that asked for them (0 or absent: only on demand). */
  readonly bookmarkIntervalMs?: number;
  /** Port (default 0: chosen by the kernel, then kept across restarts). */
  readonly port?: number;
  /** IPv4 address to listen on (default 127.0.0.1). */
  readonly host?: string;
}

/** One request as received, for assertions. `status` is the reply's status code. */
export interface RequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly authorization: string | undefined;
  /** Date.now() on arrival. */
  readonly time: number;
  readonly verb: RequestVerb;
  readonly resource: Resource | undefined;
  /** Set when the reply ends: 0 while a watch is still open. */
  status: number;
}

/** Fault switches read on every request; tests set them directly. */
export interface Faults {
  /** Wait this long before answering a list (the snapshot is taken after the wait). */
  listDelayMs: number;
  /** Wait this long before a watch's response headers (RV checks happen after the wait). */
  watchHeaderDelayMs: number;
  /**
   * Answer every watch with 200 and an immediate clean end (a reconnect storm). With
   * `after-bookmark`, a BOOKMARK at the current RV goes first (if the watch asked for them).
   */
  closeWatchImmediately: boolean | 'after-bookmark';
  /** Appended verbatim to every list's items (malformed items for robustness tests). */
  listExtraItems: unknown[];
  /** Answer lists without a Content-Type header. */
  listWithoutContentType: boolean;
}

/** How the port behaves while the server is stopped. */
export type OutageMode = 'refuse' | 'reset';
