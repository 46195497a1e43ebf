import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ManifestError, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { parseManifests, type ManifestObject } from './manifests.js';
import type { Source, SourceSink } from './types.js';

export interface FileSourceOptions {
  readonly path: string;
  readonly logger: Logger;
  /** Polling interval backing up the directory watch (network filesystems, odd editors). */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change before the file is read (editors write in several steps). */
  readonly debounceMs?: number;
}

/** Counters for metrics; plain fields. */
export interface FileSourceStats {
  /** Successful reads that were applied. */
  applies: number;
  /** Edits rejected because the file could not be read or held a bad object. */
  rejectedUpdates: number;
}

/**
 * Service and EndpointSlice manifests from a file that is watched for edits.
 *
 * At start, a bad file rejects `start()` with a ManifestError naming the file, the object and
 * the field. Later, a bad edit (unreadable file, bad YAML, a bad object) is logged and counted,
 * and the last good content keeps being served. Good edits are sent as the difference from
 * the last good content, so unchanged objects (and their connections) are not touched.
 */
export class FileSource implements Source {
  readonly kind = 'file' as const;
  readonly stats: FileSourceStats = { applies: 0, rejectedUpdates: 0 };
  readonly #path: string;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #debounceMs: number;
  #sink: SourceSink | undefined;
  #current = new Map<string, ManifestObject>();
  #lastText: string | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(opts: FileSourceOptions) {
    this.#path = resolve(opts.path);
    this.#log = opts.logger.child({ source: 'file', file: opts.path });
    this.#pollMs = opts.pollIntervalMs ?? 1000;
    this.#debounceMs = opts.debounceMs ?? 100;
  }

  async start(sink: SourceSink): Promise<void> {
    this.#sink = sink;
    const text = await this.#read();
    this.#apply(parseManifests(text, this.#path), text);
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

  /** Reads the file again now (SIGHUP). */
  reload(): Promise<void> {
    clearTimeout(this.#timer);
    this.#reading = this.#reading.then(() => this.#reload());
    return this.#reading;
  }

  #onPoll = (): void => this.#schedule();

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.reload(), this.#debounceMs);
  }

  async #read(): Promise<string> {
    try {
      return await readFile(this.#path, 'utf8');
    } catch (err) {
      throw new ManifestError(this.#path, undefined, undefined, `cannot read: ${describe(err)}`);
    }
  }

  async #reload(): Promise<void> {
    if (this.#stopped) return;
    try {
      const text = await this.#read();
      if (text === this.#lastText) return;
      this.#apply(parseManifests(text, this.#path), text);
    } catch (err) {
      this.stats.rejectedUpdates++;
      this.#log.error(
        { err: describe(err) },
        'manifests edit rejected; still serving the last good version',
      );
    }
  }

  #apply(parsed: ReturnType<typeof parseManifests>, text: string): void {
    const sink = this.#sink as SourceSink;
    for (const note of parsed.ignored) this.#log.info({ note }, 'manifest object ignored');
    const next = new Map(parsed.objects.map((o) => [`${o.kind} ${o.namespace}/${o.name}`, o]));
    for (const [key, old] of this.#current) {
      if (next.has(key)) continue;
      if (old.kind === 'Service') sink.deleteService(old.namespace, old.name);
      else sink.deleteEndpointSlice(old.namespace, old.name);
    }
    for (const o of next.values()) {
      if (o.kind === 'Service') sink.upsertService(o.raw);
      else sink.upsertEndpointSlice(o.raw);
    }
    this.#current = next;
    this.#lastText = text;
    this.stats.applies++;
    this.#log.info({ objects: next.size }, 'manifests read');
    sink.commit(true);
  }
}
