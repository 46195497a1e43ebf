import type { ServerResponse } from 'node:http';
import { discoveryDoc, SERVER_VERSION } from './discovery.js';
import { contentTypeOf, negotiate } from './negotiate.js';
import { openApiV3 } from './openapi.js';
import { writeJson, writeNotServed } from './status.js';

/**
 * GETs outside the resource paths: /version, discovery (aggregated when Accept asks for it),
 * OpenAPI v3 (see openapi.ts). Anything else gets the real 404 Status.
 */
export function serveNonResource(
  res: ServerResponse,
  pathname: string,
  accept: string | undefined,
  serverAddress: string,
): void {
  if (pathname === '/version' || pathname === '/version/') {
    return writeJson(res, 200, SERVER_VERSION);
  }
  const openapi = openApiV3(pathname);
  if (openapi) return writeJson(res, 200, openapi);
  const aggregated = negotiate(accept, ['discovery-v2']) === 'discovery-v2';
  const doc = discoveryDoc(pathname, aggregated, serverAddress);
  if (!doc) return writeNotServed(res);
  writeJson(res, 200, doc.body, contentTypeOf(doc.aggregated ? 'discovery-v2' : 'object'));
}
