import type { IncomingMessage, ServerResponse } from 'node:http';
import { HEADER_SIGNATURE, HEADER_TIMESTAMP, signRequest, signResponse, verify } from './auth.js';
import { BodyTooLarge, readBody } from './http.js';
import { BadReport, parseReport, type NodeReport } from './report.js';

/** The one route of the exchange: a peer POSTs its report and gets this node's back. */
export const REPORT_PATH = '/cluster/v1/report';

/** What the handler needs from the cluster sync. */
export interface ClusterEndpoint {
  readonly secret: Buffer;
  now(): number;
  /**
   * Takes a verified report from a peer, sent at `sentAt` (the peer's signed timestamp), and
   * returns the answer: this node's live report (static peers), the follower's part of the view
   * (this node is the aggregator), or undefined when this node is not the aggregator (503).
   */
  receive(report: NodeReport, sentAt: number): unknown;
  /** A refused request: counted, logged at most once per peer per minute. */
  refused(peer: string, reason: string, detail: string): void;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Serves `POST /cluster/v1/report` on the metrics server. Order matters: the body is read
 * (bounded) and the signature checked before the body is parsed, so an unauthenticated sender
 * can make this node do no more than one HMAC. Refusals: 401 (no or wrong signature, or too
 * old), 400 (bad report), 413 (too large), 405 (not POST). Resolves once answered.
 */
export async function handleClusterRequest(
  ep: ClusterEndpoint,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (path !== REPORT_PATH) return answer(res, 404, 'not found\n');
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return answer(res, 405, 'method not allowed\n');
  }
  let body: Buffer;
  try {
    body = await readBody(req);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      ep.refused(peer, 'too_large', err.message);
      return answer(res, 413, 'too large\n');
    }
    return;
  }
  const signature = header(req, HEADER_SIGNATURE);
  const failure = verify(
    { timestamp: header(req, HEADER_TIMESTAMP), signature },
    (ts) => signRequest(ep.secret, 'POST', REPORT_PATH, ts, body),
    ep.now(),
  );
  if (failure !== undefined) {
    ep.refused(peer, failure, 'peer request not authenticated');
    return answer(res, 401, 'unauthorized\n');
  }
  let report: NodeReport;
  try {
    report = parseReport(body.toString('utf8'));
  } catch (err) {
    const reason = err instanceof BadReport ? err.reason : 'shape';
    ep.refused(peer, reason, (err as Error).message);
    return answer(res, 400, 'bad report\n');
  }
  const answerBody = ep.receive(report, Number(header(req, HEADER_TIMESTAMP)));
  if (answerBody === undefined) return answer(res, 503, 'not the aggregator\n');
  const out = Buffer.from(JSON.stringify(answerBody));
  const ts = ep.now();
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': out.length,
    [HEADER_TIMESTAMP]: String(ts),
    [HEADER_SIGNATURE]: signResponse(ep.secret, signature as string, 200, ts, out),
  });
  res.end(out);
}
