import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeInClusterRoot, writeKubeconfig, type InClusterRoot } from './kubeconfig.js';
import { ApiError } from './api-error.js';
import { parseFieldSelector, type FieldSelector } from './field-selector.js';
import { kindOf } from './kinds/index.js';
import { mutate } from './mutations.js';
import { serveNonResource } from './non-resource.js';
import { listenOn, writeList, writeObject, type Rendering } from './replies.js';
import { parseRoute, type Route } from './routes.js';
import { parseLabelSelector, SelectorParseError, type LabelSelector } from './selector.js';
import { writeJson, writeMethodNotAllowed, writeNotServed, writeStatus } from './status.js';
import { ObjectStore, RESOURCES, type Resource, type StoredObject } from './store.js';
import { renderingOf, verbOf } from './request-info.js';
import type { FakeApiServerOptions, Faults, OutageMode, RequestLogEntry } from './server-types.js';
import { selfSignedCertificate } from './tls.js';
import { WatchStream } from './watch-stream.js';

export type { FakeApiServerOptions, Faults, OutageMode, RequestLogEntry } from './server-types.js';

interface OneShot {
  readonly verb: 'list' | 'watch';
  readonly status: number;
  readonly resource: Resource | undefined;
}

/**
 * A stand-in Kubernetes API server (127.0.0.1 by default), faithful to the wire protocol the real
 * client-node informer speaks (lists, chunked JSON-lines watches, 410 Expired, selectors,
 * bookmarks). State lives in `store` and survives stop/restart. Only the test that started
 * it may mutate it; call `close()` in the same test.
 */
export class FakeApiServer {
  /** Objects and history; mutate through `upsert`/`delete` (or the store directly). */
  readonly store = new ObjectStore();
  /** Every request received, in arrival order. */
  readonly requests: RequestLogEntry[] = [];
  /** Fault switches, see `Faults`. */
  readonly faults: Faults = {
    listDelayMs: 0,
    watchHeaderDelayMs: 0,
    closeWatchImmediately: false,
    listWithoutContentType: false,
    listExtraItems: [],
  };
  /** Date.now() of each TCP connection accepted (and reset) while stopped in `reset` mode. */
  readonly outageConnections: number[] = [];
  /** PEM certificate to trust in TLS mode (also the CA), else undefined. */
  readonly ca: string | undefined;
  /** The address listened on. */
  readonly host: string;
  readonly #token: string | undefined;
  readonly #bookmarkIntervalMs: number;
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #watches = new Set<WatchStream>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #oneShots: OneShot[] = [];
  #port: number;
  #running = false;
  #outage: net.Server | undefined;

  private constructor(opts: FakeApiServerOptions, keys: { cert: string; key: string } | undefined) {
    this.#token = opts.token;
    this.#bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 0;
    this.#port = opts.port ?? 0;
    this.host = opts.host ?? '127.0.0.1';
    this.ca = keys?.cert;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.#handle(req, res);
    this.#server = keys ? https.createServer(keys, handler) : http.createServer(handler);
    this.#server.on('connection', (s: net.Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /** Creates and starts a server; resolves once it listens. */
  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const keys = opts.tls ? await selfSignedCertificate(opts.host ?? '127.0.0.1') : undefined;
    const s = new FakeApiServer(opts, keys);
    await s.#listen();
    return s;
  }

  /** The port, fixed after the first start. */
  get port(): number {
    return this.#port;
  }

  /** `http(s)://<host>:<port>`. */
  get url(): string {
    return `${this.ca !== undefined ? 'https' : 'http'}://${this.host}:${this.#port}`;
  }

  /** Whether the HTTP(S) listener is up. */
  get running(): boolean {
    return this.#running;
  }

  /** Creates or replaces an object; open watches see ADDED/MODIFIED (or selector transitions). */
  upsert(resource: Resource, obj: object): StoredObject {
    return this.store.upsert(resource, obj);
  }

  /** Deletes an object; open watches see DELETED. Returns false if it did not exist. */
  delete(resource: Resource, namespace: string | undefined, name: string): boolean {
    return this.store.delete(resource, namespace, name);
  }

  /** Open watches, optionally of one resource. */
  watchCount(resource?: Resource): number {
    return this.#select(resource).length;
  }

  /** Sends a BOOKMARK now on open watches that asked for bookmarks; returns how many got one. */
  bookmark(resource?: Resource): number {
    return this.#select(resource).filter((w) => w.bookmark()).length;
  }

  /** Compacts history; open watches get an ERROR 410 Expired event and end. */
  expire(resource?: Resource): void {
    for (const r of resource ? [resource] : (Object.keys(RESOURCES) as Resource[])) {
      this.store.compact(r);
    }
    for (const w of this.#select(resource)) {
      w.errorEvent(410, `too old resource version (${this.store.resourceVersion})`);
      w.end();
    }
  }

  /** Ends open watches cleanly (terminating chunk): the client should re-watch, not relist. */
  endWatches(resource?: Resource): void {
    for (const w of this.#select(resource)) w.end();
  }

  /** Destroys the sockets of open watches mid-stream. */
  dropWatches(resource?: Resource): void {
    for (const w of this.#select(resource)) w.destroy();
  }

  /** Destroys every open socket, idle keep-alive ones included. */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** The next list or watch (of `resource`, or any) is answered with `status` + Status body. */
  failNext(verb: 'list' | 'watch', status: number, resource?: Resource): void {
    this.#oneShots.push({ verb, status, resource });
  }

  /** Writes an ERROR event with a Status of `code` on open watches; the stream stays open. */
  errorEvent(code: number, resource?: Resource, message = 'injected error'): void {
    for (const w of this.#select(resource)) w.errorEvent(code, message);
  }

  /** Writes a line that is not JSON on open watches (client-node drops it silently). */
  garbageLine(resource?: Resource): void {
    this.rawLine('this is not json {', resource);
  }

  /** Writes `line` verbatim (plus a newline) on open watches: garbage or malformed events. */
  rawLine(line: string, resource?: Resource): void {
    for (const w of this.#select(resource)) w.writeLine(line);
  }

  /** Resolves with the first logged request matching `pred`, polling until `timeoutMs`. */
  async waitForRequest(
    pred: (r: RequestLogEntry) => boolean,
    timeoutMs = 5000,
  ): Promise<RequestLogEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.requests.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) {
        const seen = this.requests.map((r) => `${r.verb} ${r.path} ${JSON.stringify(r.query)}`);
        throw new Error(`no matching request within ${timeoutMs} ms; seen:\n${seen.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Writes a kubeconfig for this server to `file` (see `writeKubeconfig`). */
  writeKubeconfig(file: string): Promise<string> {
    return writeKubeconfig({ url: this.url, ca: this.ca, token: this.#token }, file);
  }

  /** Lays out service-account files under `root` for `loadFromCluster(root)` (TLS mode only). */
  writeInClusterRoot(root: string): Promise<InClusterRoot> {
    const target = { url: this.url, ca: this.ca, token: this.#token, port: this.#port };
    return writeInClusterRoot({ ...target, host: this.host }, root);
  }

  /**
   * Closes the listener and destroys every connection (open watches see a network error).
   * While stopped the port refuses connections (`refuse`, ECONNREFUSED), or (`reset`) a bare
   * TCP listener accepts, records in `outageConnections` and resets each one.
   */
  async stop(opts: { outage?: OutageMode } = {}): Promise<void> {
    if (this.#running) {
      this.#running = false;
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      for (const w of [...this.#watches]) w.destroy();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.dropConnections();
      await closed;
    }
    if (opts.outage === 'reset' && !this.#outage) {
      const outage = net.createServer((s) => {
        this.outageConnections.push(Date.now());
        s.resetAndDestroy();
      });
      await listenOn(outage, this.host, this.#port);
      this.#outage = outage;
    }
  }

  /** Listens again on the same port; state and history are kept. */
  async restart(): Promise<void> {
    await this.#closeOutage();
    if (!this.#running) await this.#listen();
  }

  /** Stops everything for good. */
  async close(): Promise<void> {
    await this.stop();
    await this.#closeOutage();
  }

  async #closeOutage(): Promise<void> {
    const o = this.#outage;
    this.#outage = undefined;
    if (o) await new Promise<void>((resolve) => o.close(() => resolve()));
  }

  async #listen(): Promise<void> {
    await listenOn(this.#server, this.host, this.#port);
    this.#port = (this.#server.address() as net.AddressInfo).port;
    this.#running = true;
  }

  #select(resource: Resource | undefined): WatchStream[] {
    return [...this.#watches].filter((w) => !resource || w.params.resource === resource);
  }

  #later(fn: () => void, ms: number): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = parseRoute(url.pathname);
    const query = Object.fromEntries(url.searchParams);
    const isWatch = query['watch'] === 'true' || query['watch'] === '1';
    const verb = verbOf(req.method ?? '', route, isWatch);
    const entry: RequestLogEntry = {
      method: req.method ?? '',
      path: url.pathname,
      query,
      authorization: req.headers.authorization,
      time: Date.now(),
      verb,
      resource: route?.resource,
      status: 0,
    };
    this.requests.push(entry);
    res.on('close', () => (entry.status = res.statusCode));

    if (this.#token !== undefined && req.headers.authorization !== `Bearer ${this.#token}`) {
      req.resume();
      return writeStatus(res, 401, 'Unauthorized');
    }
    if (!route) {
      req.resume();
      if (req.method !== 'GET') return writeNotServed(res);
      return serveNonResource(res, url.pathname, req.headers.accept, `${this.host}:${this.#port}`);
    }
    if (verb === 'other' || !kindOf(route.resource).verbs.includes(verb)) {
      req.resume();
      return writeMethodNotAllowed(res);
    }
    if (verb === 'create' || verb === 'update' || verb === 'patch' || verb === 'delete') {
      return void mutate(this.store, req, res, route, verb, query);
    }
    req.resume();
    if (verb === 'list' || verb === 'watch') {
      const i = this.#oneShots.findIndex(
        (f) => f.verb === verb && (!f.resource || f.resource === route.resource),
      );
      if (i >= 0) {
        const [f] = this.#oneShots.splice(i, 1);
        return writeStatus(res, f!.status, `injected ${verb} failure`);
      }
    }
    let selector: LabelSelector;
    let fields: FieldSelector;
    try {
      selector = parseLabelSelector(query['labelSelector']);
      fields = parseFieldSelector(query['fieldSelector']);
    } catch (err) {
      if (err instanceof ApiError) return writeJson(res, err.code, err.toStatus());
      if (!(err instanceof SelectorParseError)) throw err;
      return writeStatus(res, 400, `unable to parse requirement: ${err.message}`);
    }
    const rendering = renderingOf(req.headers.accept, query);
    if (rendering === undefined) {
      return writeStatus(res, 400, `includeObject: unsupported value "${query['includeObject']}"`);
    }
    if (verb === 'get') return writeObject(res, this.store, route, rendering);
    if (verb === 'list')
      return this.#later(
        () => writeList(res, this.store, route, selector, fields, rendering, this.faults),
        this.faults.listDelayMs,
      );
    this.#later(
      () => this.#watch(res, route, { selector, fields, rendering }, query),
      this.faults.watchHeaderDelayMs,
    );
  }

  #watch(
    res: ServerResponse,
    route: Route,
    filter: { selector: LabelSelector; fields: FieldSelector; rendering: Rendering },
    query: Record<string, string>,
  ): void {
    if (res.destroyed) return;
    const rvParam = query['resourceVersion'] ?? '';
    const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && !Number.isSafeInteger(from)) {
      return writeStatus(res, 400, `invalid resourceVersion "${rvParam}"`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const bookmarks =
      query['allowWatchBookmarks'] === 'true' || query['allowWatchBookmarks'] === '1';
    const params = { resource: route.resource, namespace: route.namespace, ...filter, bookmarks };
    const w = new WatchStream(res, this.store, params, (x) => this.#watches.delete(x));
    this.#watches.add(w);
    if (this.faults.closeWatchImmediately) {
      if (this.faults.closeWatchImmediately === 'after-bookmark') w.bookmark();
      return w.end();
    }
    const compacted = this.store.compactedRV(route.resource);
    if (from !== undefined && from < compacted) {
      w.errorEvent(410, `too old resource version: ${from} (${compacted})`);
      return w.end();
    }
    w.begin(from);
    const timeout = Number(query['timeoutSeconds'] ?? '0');
    if (timeout > 0) w.endAfter(timeout * 1000);
    w.bookmarkEvery(this.#bookmarkIntervalMs);
  }
}
