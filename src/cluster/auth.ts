import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Peer authentication: HMAC-SHA256 under a secret every proxy of the cluster shares (a
 * Kubernetes Secret mounted in the DaemonSet, or a file on bare metal). A request is signed over
 * its method, path, timestamp and body; the response is signed over the request's signature,
 * its own timestamp and body, so a response cannot be replayed to another request and a peer
 * cannot be impersonated in either direction. The timestamp bounds replay of a captured request
 * to the window; the receiver also keeps only reports newer than the last one it accepted from
 * the same node. Pure (node:crypto only).
 */

export const HEADER_TIMESTAMP = 'x-klp-timestamp';
export const HEADER_SIGNATURE = 'x-klp-signature';

/** How far a peer's clock (and the network) may be off before a request is refused. */
export const SIGNATURE_WINDOW_MS = 30_000;

/** Shortest secret accepted, in bytes (HMAC-SHA256 keys below this are weak). */
export const MIN_SECRET_BYTES = 16;

/** Why a signed message was refused; a closed set (a metric label). */
export type AuthFailure = 'missing' | 'bad_signature' | 'stale';

function mac(secret: Buffer, parts: readonly (string | Buffer)[]): string {
  const h = createHmac('sha256', secret);
  for (const p of parts) {
    // Length-prefixed: no two different part lists give the same input.
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest('hex');
}

/** Signature of a request. */
export function signRequest(
  secret: Buffer,
  method: string,
  path: string,
  timestamp: number,
  body: Buffer,
): string {
  return mac(secret, ['req', method.toUpperCase(), path, String(timestamp), body]);
}

/** Signature of the response to a request whose signature was `requestSignature`. */
export function signResponse(
  secret: Buffer,
  requestSignature: string,
  status: number,
  timestamp: number,
  body: Buffer,
): string {
  return mac(secret, ['res', requestSignature, String(status), String(timestamp), body]);
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The signature headers as received (undefined when absent). */
export interface SignedHeaders {
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
}

/** Parses the timestamp header: a whole number of Unix milliseconds, else undefined. */
function parseTimestamp(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * Checks a signed request or response. `expected` computes the signature for the timestamp the
 * message carries. Returns undefined when it holds, else why not.
 */
export function verify(
  headers: SignedHeaders,
  expected: (timestamp: number) => string,
  now: number,
  windowMs = SIGNATURE_WINDOW_MS,
): AuthFailure | undefined {
  if (headers.signature === undefined || headers.timestamp === undefined) return 'missing';
  const ts = parseTimestamp(headers.timestamp);
  if (ts === undefined) return 'bad_signature';
  if (!equal(headers.signature, expected(ts))) return 'bad_signature';
  if (Math.abs(now - ts) > windowMs) return 'stale';
  return undefined;
}
