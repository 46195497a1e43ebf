import { createHash } from 'node:crypto';
import { KINDS, prefixOf, type KindSpec } from './kinds/index.js';

/**
 * A minimal OpenAPI v3 surface: the root index (`/openapi/v3`) and one document per group
 * version listing each resource's operations with their `x-kubernetes-group-version-kind` and
 * the `fieldValidation` query parameter. kubectl (1.27+) reads exactly this to decide that the
 * server validates fields itself; it then sends `?fieldValidation=Strict` instead of
 * validating client side against /openapi/v2 (which is not served: `kubectl explain` and
 * `--validate` against a v2 schema do not work). No component schemas are published, and
 * PATCH operations declare no request body, so kubectl computes strategic merge patches from
 * its compiled-in types, as it does for any server without them.
 */

function itemPath(k: KindSpec): string {
  const ns = k.namespaced ? '/namespaces/{namespace}' : '';
  return `${prefixOf(k)}${ns}/${k.resource}/{name}`;
}

function collectionPath(k: KindSpec): string {
  const ns = k.namespaced ? '/namespaces/{namespace}' : '';
  return `${prefixOf(k)}${ns}/${k.resource}`;
}

const FIELD_VALIDATION = {
  name: 'fieldValidation',
  in: 'query',
  description: 'Strict, Warn or Ignore: what the server does with unknown fields.',
  schema: { type: 'string', uniqueItems: true },
};

function operation(k: KindSpec, action: string): Record<string, unknown> {
  return {
    operationId: `${action}${k.kind}`,
    parameters: [FIELD_VALIDATION],
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: k.group, version: k.version, kind: k.kind },
  };
}

/** `api/v1` or `apis/<group>/<version>`: the keys of the root index. */
function gvKey(k: KindSpec): string {
  return prefixOf(k).slice(1);
}

function gvDocument(kinds: readonly KindSpec[]): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const k of kinds) {
    if (k.verbs.includes('create')) paths[collectionPath(k)] = { post: operation(k, 'post') };
    const item: Record<string, unknown> = {};
    if (k.verbs.includes('update')) item['put'] = operation(k, 'put');
    if (k.verbs.includes('patch')) item['patch'] = operation(k, 'patch');
    if (Object.keys(item).length > 0) paths[itemPath(k)] = item;
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (kube-lc-proxy stand-in)', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

function hashOf(doc: unknown): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
}

/** The OpenAPI v3 reply for `pathname`, or undefined (404) for any other path. */
export function openApiV3(pathname: string): Record<string, unknown> | undefined {
  const byGv = new Map<string, KindSpec[]>();
  for (const k of KINDS) byGv.set(gvKey(k), [...(byGv.get(gvKey(k)) ?? []), k]);
  const path = pathname.replace(/\/+$/, '');
  if (path === '/openapi/v3') {
    const paths: Record<string, unknown> = {};
    for (const [key, kinds] of byGv) {
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hashOf(gvDocument(kinds))}` };
    }
    return { paths };
  }
  const kinds = byGv.get(path.slice('/openapi/v3/'.length));
  return path.startsWith('/openapi/v3/') && kinds ? gvDocument(kinds) : undefined;
}
