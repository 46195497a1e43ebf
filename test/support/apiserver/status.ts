import type { ServerResponse } from 'node:http';

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A metav1.Status object as the API server writes it for failures. */
export function statusObject(
  code: number,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? 'Unknown',
    ...(details !== undefined ? { details } : {}),
    code,
  };
}

/** Answers `code` with a Status body (Content-Type: application/json). */
export function writeStatus(
  res: ServerResponse,
  code: number,
  message: string,
  details?: Record<string, unknown>,
): void {
  writeJson(res, code, statusObject(code, message, details));
}

/** Answers `code` with `body` as JSON (Content-Length set). */
export function writeJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  contentType = 'application/json',
): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** The real apiserver's 404 for a path it does not serve (no such resource or group). */
export function writeNotServed(res: ServerResponse): void {
  writeStatus(res, 404, 'the server could not find the requested resource', {});
}

/** The real apiserver's 405 for a verb a resource does not support. */
export function writeMethodNotAllowed(res: ServerResponse): void {
  writeStatus(res, 405, 'the server does not allow this method on the requested resource', {});
}
