import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { hash } from 'node:crypto';
import { ManifestError, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeBounded, limitsFor, type ParseLimits } from './bounded-parse.js';
import { manifestsFromDocuments, type ParsedManifests } from './manifests.js';
import type { Source, SourceSink, SourceStats } from './types.js';

export interface FileSourceOptions {
  readonly path: string;
  readonly logger: Logger;
  /** Polling interval backing up the directory watch (network filesystems, odd editors). */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change before the file is read (editors write in several steps). */
  readonly debounceMs?: number;
  /** Largest file read, in bytes (`--max-manifests-bytes`). Default 4 MiB. */
  readonly maxBytes?: number;
  /** Overrides the parse limits derived from `maxBytes` (tests). */
  readonly limits?: Partial<ParseLimits>;
}

/** Default of `--max-manifests-bytes`: about 3,000 Services with 3 endpoints each, as YAML. */
export const DEFAULT_MAX_MANIFESTS_BYTES = 4 * 1024 * 1024;

/** Counters for metrics; plain fields. */
export interface FileSourceStats {
  /** Successful reads that were applied. */
  applies: number;
  /** Edits rejected because the file could not be read, was too big or costly, or held a bad object. */
  rejectedUpdates: number;
  /** Reads that found the file empty (being written) and waited for content. */
  emptyReads: number;
}

/**
 * Service and EndpointSlice manifests from a file that is watched for edits.
 *
 * At start, a bad file rejects `start()` with a ManifestError naming the file, the object and
 * the field (or the limit it passed). Later, a bad edit (unreadable file, too big, too costly to
 * parse, bad YAML, a bad object) is logged once and counted once, and the last good content
 * keeps being served. Parsing is bounded in size, memory and time and runs beside the data path
 * (see bounded-parse.ts). A zero-byte file is a file being written (truncate, then write): it
 * is ignored until it has content. Good edits are sent as the difference from the last good
 * content, so unchanged objects (and their connections) are not touched.
 */
export class FileSource implements Source {
  readonly kind = 'file' as const;
  readonly stats: FileSourceStats = { applies: 0, rejectedUpdates: 0, emptyReads: 0 };
  readonly #statsView: SourceStats = { kind: 'file', file: this.stats };
  readonly #path: string;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #debounceMs: number;
  readonly #limits: ParseLimits;
  #sink: SourceSink | undefined;
  /**
   * `Kind namespace/name` → digest of the object as decoded, for the last good content. Only
   * digests are kept between reads, not the decoded objects (with 10,000 Services those were a
   * large share of the heap; issue 13).
   */
  #current = new Map<string, string>();
  /** Digest of the last good text. */
  #lastText: string | undefined;
  /** Identity (inode, size, mtime) of the file version last handled, applied or rejected. */
  #lastVersion: string | undefined;
  #waitingForContent = false;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(opts: FileSourceOptions) {
    this.#path = resolve(opts.path);
    this.#log = opts.logger.child({ source: 'file', file: opts.path });
    this.#pollMs = opts.pollIntervalMs ?? 1000;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#limits = { ...limitsFor(opts.maxBytes ?? DEFAULT_MAX_MANIFESTS_BYTES), ...opts.limits };
  }

  async start(sink: SourceSink): Promise<void> {
    this.#sink = sink;
    const read = await this.#read();
    if (read === undefined) {
      this.#noteEmpty();
    } else {
      this.#apply(await this.#parse(read.text), read.text);
      this.#lastVersion = read.version;
    }
    // Watch the directory, not the file: editors replace files by renaming over them.
    try {
      this.#watcher = watch(dirname(this.#path), (_event, name) => {
        if (name === null || name === basename(this.#path)) this.#schedule();
      });
      this.#watcher.on('error', (err) =>
        this.#log.warn({ err: describe(err) }, 'directory watch failed; polling only'),
      );
    } catch (err) {
      this.#log.warn({ err: describe(err) }, 'cannot watch the directory; polling only');
    }
    watchFile(this.#path, { interval: this.#pollMs, persistent: false }, this.#onPoll);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    unwatchFile(this.#path, this.#onPoll);
    await this.#reading;
  }

  /** `stats`, for reading only (see Source.statsView). */
  statsView(): SourceStats {
    return this.#statsView;
  }

  /** Reads the file again now (SIGHUP), even if it looks unchanged. */
  reload(): Promise<void> {
    return this.#enqueue(true);
  }

  #enqueue(force: boolean): Promise<void> {
    clearTimeout(this.#timer);
    this.#reading = this.#reading.then(() => this.#reload(force));
    return this.#reading;
  }

  #onPoll = (): void => this.#schedule();

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#enqueue(false), this.#debounceMs);
  }

  /**
   * Reads the file, refusing one above the size limit before reading it. Undefined when the
   * file is empty (being written).
   */
  async #read(): Promise<{ text: string; version: string } | undefined> {
    const max = this.#limits.maxBytes;
    let text: string;
    let version: string;
    try {
      const st = await stat(this.#path);
      version = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (st.size > max) throw tooBig(this.#path, st.size, max);
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if (err instanceof ManifestError) throw err;
      throw new ManifestError(this.#path, undefined, undefined, `cannot read: ${describe(err)}`);
    }
    // It may have grown between the stat and the read.
    if (text.length > max) throw tooBig(this.#path, Buffer.byteLength(text), max);
    return text.length === 0 ? undefined : { text, version };
  }

  async #parse(text: string): Promise<ParsedManifests> {
    return manifestsFromDocuments(await decodeBounded(text, this.#path, this.#limits), this.#path);
  }

  /** Current identity of the file, or undefined if it cannot be read. */
  async #version(): Promise<string | undefined> {
    try {
      const st = await stat(this.#path);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }

  async #reload(force: boolean): Promise<void> {
    if (this.#stopped) return;
    // The directory watch and the poll both report one edit: handle each version once, so a
    // bad edit is logged and counted once.
    const version = await this.#version();
    if (!force && version !== undefined && version === this.#lastVersion) return;
    try {
      const read = await this.#read();
      if (read === undefined) return this.#noteEmpty();
      this.#lastVersion = read.version;
      this.#waitingForContent = false;
      if (digest(read.text) === this.#lastText) return;
      this.#apply(await this.#parse(read.text), read.text);
    } catch (err) {
      if (version !== undefined) this.#lastVersion = version;
      this.stats.rejectedUpdates++;
      this.#log.error(
        { err: describe(err) },
        this.#sink !== undefined && this.stats.applies > 0
          ? 'manifests edit rejected; still serving the last good version'
          : 'manifests file rejected; still waiting for a good version',
      );
    }
  }

  #noteEmpty(): void {
    this.stats.emptyReads++;
    if (this.#waitingForContent) return;
    this.#waitingForContent = true;
    this.#lastVersion = undefined;
    this.#log.warn(
      { applied: this.stats.applies > 0 },
      'manifests file is empty (being written?); ignored until it has content. Write a temporary file and rename it over this one',
    );
  }

  #apply(parsed: ParsedManifests, text: string): void {
    const sink = this.#sink as SourceSink;
    for (const note of parsed.ignored) this.#log.info({ note }, 'manifest object ignored');
    // Only the objects that changed go to the sink, so a one-endpoint edit validates and
    // rebuilds one object, not every one in the file (issue 13).
    const next = new Map<string, string>();
    const changed = [];
    for (const o of parsed.objects) {
      const key = `${o.kind} ${o.namespace}/${o.name}`;
      const d = digest(JSON.stringify(o.raw));
      next.set(key, d);
      if (this.#current.get(key) !== d) changed.push(o);
    }
    for (const key of this.#current.keys()) {
      if (next.has(key)) continue;
      // `Kind namespace/name`: names and namespaces hold neither spaces nor slashes.
      const [kind, id = ''] = key.split(' ');
      const [namespace = '', name = ''] = id.split('/');
      if (kind === 'Service') sink.deleteService(namespace, name);
      else sink.deleteEndpointSlice(namespace, name);
    }
    for (const o of changed) {
      if (o.kind === 'Service') sink.upsertService(o.raw);
      else sink.upsertEndpointSlice(o.raw);
    }
    this.#current = next;
    this.#lastText = digest(text);
    this.stats.applies++;
    this.#log.info({ objects: next.size }, 'manifests read');
    sink.commit(true);
  }
}

function tooBig(file: string, size: number, max: number): ManifestError {
  return new ManifestError(
    file,
    undefined,
    undefined,
    `is ${size} bytes, more than --max-manifests-bytes (${max}); rejected. Raise the flag if the file is meant to be this big`,
  );
}

/**
 * A short digest of `text`, kept instead of the text. The one-shot `hash` costs a fraction of
 * `createHash` per call, which matters at 20,000 objects (issue 13).
 */
function digest(text: string): string {
  return hash('sha1', text, 'base64');
}
