import { request, Agent, type IncomingMessage } from 'node:http';

/** Longest body accepted from a peer, either way (a report at 1,000 Service ports is ~300 kB). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** A body over the limit. */
export class BodyTooLarge extends Error {}

/** Reads a request or response body, refusing more than `limit` bytes. */
export function readBody(msg: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(msg.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      msg.resume();
      reject(new BodyTooLarge(`body of ${declared} bytes is over ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    msg.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        msg.destroy();
        reject(new BodyTooLarge(`body over ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    msg.on('end', () => resolve(Buffer.concat(chunks)));
    msg.on('error', reject);
    msg.on('aborted', () => reject(new Error('aborted')));
  });
}

/** A peer's answer. */
export interface PeerResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/** One keep-alive connection per peer is enough: the exchange is one request per interval. */
export const peerAgent = new Agent({ keepAlive: true, maxSockets: 2, keepAliveMsecs: 10_000 });

/** POSTs `body` to http://host:port/path with a whole-exchange timeout. */
export function post(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
  timeoutMs: number,
): Promise<PeerResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        path,
        method: 'POST',
        agent: peerAgent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        readBody(res).then(
          (b) => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b });
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err as Error);
          },
        );
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
