import { Worker } from 'node:worker_threads';
import { ManifestError } from '../errors.js';
import { decodeDocuments, type DecodeRequest, type DecodedDocument } from './decode-worker.js';

/** Limits on reading one manifests file. */
export interface ParseLimits {
  /** Largest file, in bytes (`--max-manifests-bytes`). */
  readonly maxBytes: number;
  /** Heap of the decoding worker, in MB. */
  readonly heapMb: number;
  /** Longest decode, in ms. */
  readonly deadlineMs: number;
}

/** Below this size the text is decoded inline: a worker's start costs more than the decode. */
const INLINE_MAX_BYTES = 64 * 1024;

/**
 * The worker limits that go with a size limit. Measured with the `yaml` package on kubectl-style
 * YAML: 12 MB (10,000 Services with 3 endpoints each) took 6 s and 350 MB of heap on a busy
 * 2-core machine, so about 30 bytes of heap per byte of text and 0.5 s per MB. The limits leave
 * room above that; hostile text (1 MB of garbage takes 370 MB and 3 s) hits them early.
 */
export function limitsFor(maxBytes: number): ParseLimits {
  const mib = maxBytes / (1024 * 1024);
  return {
    maxBytes,
    heapMb: Math.max(64, Math.ceil(40 * mib)),
    deadlineMs: Math.max(5_000, Math.ceil(2_000 * mib)),
  };
}

/**
 * Decodes `text` (the YAML or JSON of `file`) without letting it stall or exhaust the process:
 * above a small size it runs in a worker thread with a heap limit (`resourceLimits`) and a
 * deadline, and the event loop keeps serving meanwhile. Rejects with a ManifestError naming the
 * file and the limit it passed. The caller checks `maxBytes` before reading.
 */
export function decodeBounded(
  text: string,
  file: string,
  limits: ParseLimits,
): Promise<DecodedDocument[]> {
  if (text.length <= INLINE_MAX_BYTES) return Promise.resolve(decodeDocuments(text));
  // From dist/ the worker is compiled JavaScript; from src/ (tests) Node strips its types.
  const self = import.meta.url;
  const url = new URL(self.endsWith('.ts') ? './decode-worker.ts' : './decode-worker.js', self);
  const request: DecodeRequest = { kind: 'kube-lc-proxy/decode-manifests', text };
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, {
      workerData: request,
      resourceLimits: {
        maxOldGenerationSizeMb: limits.heapMb,
        maxYoungGenerationSizeMb: Math.min(32, Math.max(4, Math.ceil(limits.heapMb / 8))),
      },
    });
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      reject(new ManifestError(file, undefined, undefined, message));
    };
    const timer = setTimeout(
      () =>
        fail(
          `took longer than ${limits.deadlineMs} ms to parse (the limit that goes with --max-manifests-bytes ${limits.maxBytes}); rejected`,
        ),
      limits.deadlineMs,
    );
    worker.once('message', (docs: DecodedDocument[]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(docs);
    });
    worker.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `needs more than ${limits.heapMb} MB of memory to parse (the limit that goes with --max-manifests-bytes ${limits.maxBytes}); rejected`
          : `cannot be parsed: ${err.message}`,
      ),
    );
    worker.once('exit', (code) => fail(`parser stopped with code ${code} before it finished`));
  });
}
