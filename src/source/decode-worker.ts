import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseAllDocuments } from 'yaml';

/*
 * The costly half of reading a manifests file (YAML decoding), run in a worker thread with
 * memory and time limits (see bounded-parse.ts). This file imports nothing of the project, so
 * that the same file can run as a worker from dist/ (compiled) and from src/ (Node strips the
 * types) alike.
 */

/** One YAML document of a file, decoded: its value, or the first syntax error. */
export type DecodedDocument =
  { readonly value: unknown; readonly error?: undefined } | { readonly error: string };

/** What the worker is given: the file's text. */
export interface DecodeRequest {
  readonly kind: 'kube-lc-proxy/decode-manifests';
  readonly text: string;
}

/**
 * Decodes a manifests file's text into its YAML (or JSON) documents. Unbounded in time and
 * memory on hostile input: call it through `decodeBounded` unless the text is known small.
 */
export function decodeDocuments(text: string): DecodedDocument[] {
  // A file that is one JSON value (`kubectl get -o json`) is read with JSON.parse: the YAML
  // parser builds a node tree many times the size of the file, which at 10,000 Services took
  // seconds and hundreds of megabytes (issue 13). JSON that JSON.parse rejects goes on to the
  // YAML parser (a superset), which says where it breaks.
  if (/^\s*[{[]/.test(text)) {
    try {
      return [{ value: JSON.parse(text) as unknown }];
    } catch {
      // Fall through.
    }
  }
  const out: DecodedDocument[] = [];
  // parseAllDocuments returns an EmptyStream for empty input, which is iterable like an array.
  for (const doc of parseAllDocuments(text, { prettyErrors: true })) {
    const err = doc.errors[0];
    // The first bad document ends the file: nothing after it is trusted.
    if (err !== undefined) {
      out.push({ error: err.message });
      break;
    }
    out.push({ value: doc.toJS() as unknown });
  }
  return out;
}

const request = workerData as DecodeRequest | undefined;
if (!isMainThread && request?.kind === 'kube-lc-proxy/decode-manifests') {
  parentPort?.postMessage(decodeDocuments(request.text));
}
