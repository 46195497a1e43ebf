import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, invalid, notFound } from './api-error.js';
import { apiVersionOf, kindOf, type KindSpec } from './kinds/index.js';
import { checkFields, pruneUnknown } from './kinds/schema.js';
import {
  applyPatch,
  PATCH_TYPES,
  PatchError,
  type Json,
  type JsonObject,
  type PatchType,
} from './patch/index.js';
import type { Route } from './routes.js';
import { writeJson, writeMethodNotAllowed, writeStatus } from './status.js';
import type { ObjectStore, StoredObject } from './store.js';

/** The request body limit of the real apiserver (3 MiB): larger bodies get 413. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** A reply: status and JSON body (an object with kind/apiVersion, or a Status). */
export interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** `Warning` headers (unknown fields under `fieldValidation=Warn`). */
  readonly warnings?: readonly string[];
}

/** `?fieldValidation=`: Strict rejects unknown fields, Warn (the default) warns, Ignore drops. */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** Reads `fieldValidation` from the query; 400 for another value, as the apiserver does. */
export function fieldValidationOf(query: Readonly<Record<string, string>>): FieldValidation {
  const v = query['fieldValidation'] ?? 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${v}"`);
}

/**
 * Checks `obj` against the kind's known fields. A value of the wrong JSON type is a decoding
 * error (400) whatever the mode; unknown fields are a 400 under Strict and warnings under Warn.
 */
function validateFields(spec: KindSpec, obj: unknown, mode: FieldValidation): string[] {
  const problems = checkFields(spec.fields, obj);
  const prefix = `${spec.kind} in version "${spec.version}" cannot be handled as a ${spec.kind}`;
  const typeErr = problems.find((p) => p.kind === 'type');
  if (typeErr) throw badRequest(`${prefix}: wrong type at "${typeErr.path}": ${typeErr.message}`);
  const unknown = problems.filter((p) => p.kind === 'unknown').map((p) => p.message);
  if (unknown.length === 0 || mode === 'Ignore') return [];
  if (mode === 'Strict')
    throw badRequest(`${prefix}: strict decoding error: ${unknown.join(', ')}`);
  return unknown;
}

/** Reads the whole body, up to MAX_BODY_BYTES (else ApiError 413). */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        `Request entity too large: limit is ${MAX_BODY_BYTES}`,
      );
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function parseJson(spec: KindSpec, body: Buffer): Json {
  try {
    return JSON.parse(body.toString('utf8')) as Json;
  } catch (err) {
    throw badRequest(
      `the object provided is unrecognized (must be of type ${spec.kind}): couldn't get version/kind; json parse error: ${(err as Error).message}`,
    );
  }
}

function wire(spec: KindSpec, o: StoredObject): Record<string, unknown> {
  return { kind: spec.kind, apiVersion: apiVersionOf(spec), ...o };
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Checks a request body against the route as the apiserver's decoding does: an object of this
 * kind and version, a namespace that matches the URL's (filled in when absent), a valid name
 * (or `generateName` on create). Object contents are not validated beyond metadata.
 */
function objectFor(
  spec: KindSpec,
  route: Route,
  body: Buffer,
  verb: 'create' | 'update',
): JsonObject {
  const obj = parseJson(spec, body);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw badRequest(`the object provided is unrecognized (must be of type ${spec.kind})`);
  }
  const apiVersion = obj['apiVersion'];
  if (apiVersion !== undefined && apiVersion !== apiVersionOf(spec)) {
    throw badRequest(
      `the API version in the data (${String(apiVersion)}) does not match the expected API version (${apiVersionOf(spec)})`,
    );
  }
  if (obj['kind'] !== undefined && obj['kind'] !== spec.kind) {
    throw badRequest(
      `the kind in the data (${String(obj['kind'])}) does not match the expected kind (${spec.kind})`,
    );
  }
  const meta = (obj['metadata'] ?? {}) as JsonObject;
  if (typeof meta !== 'object' || Array.isArray(meta))
    throw badRequest('metadata must be an object');
  obj['metadata'] = meta;
  if (spec.namespaced) {
    if (
      meta['namespace'] !== undefined &&
      meta['namespace'] !== '' &&
      meta['namespace'] !== route.namespace
    ) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    meta['namespace'] = route.namespace ?? 'default';
  }
  if (verb === 'create' && (meta['name'] === undefined || meta['name'] === '')) {
    const prefix = meta['generateName'];
    if (typeof prefix === 'string' && prefix !== '') {
      const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
      meta['name'] =
        prefix + [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
    }
  }
  const name = meta['name'];
  if (verb === 'update' && name !== undefined && name !== route.name) {
    throw badRequest(
      `the name of the object (${String(name)}) does not match the name on the URL (${String(route.name)})`,
    );
  }
  if (verb === 'update' && name === undefined) meta['name'] = route.name ?? '';
  if (typeof meta['name'] !== 'string' || meta['name'] === '') {
    throw invalid(
      spec,
      '',
      'metadata.name',
      '',
      'name or generateName is required',
      'FieldValueRequired',
    );
  }
  if (!NAME.test(meta['name']) || meta['name'].length > 253) {
    throw invalid(
      spec,
      meta['name'],
      'metadata.name',
      JSON.stringify(meta['name']),
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
  }
  for (const field of ['labels', 'annotations']) {
    const m = meta[field];
    if (m === undefined || m === null) continue;
    if (
      typeof m !== 'object' ||
      Array.isArray(m) ||
      Object.values(m).some((v) => typeof v !== 'string')
    ) {
      throw badRequest(`metadata.${field} must map strings to strings`);
    }
  }
  return obj;
}

/** POST to a collection: 201 with the stored object. */
export function create(
  store: ObjectStore,
  route: Route,
  body: Buffer,
  mode: FieldValidation,
): Reply {
  const spec = kindOf(route.resource);
  const obj = objectFor(spec, route, body, 'create');
  const warnings = validateFields(spec, obj, mode);
  const meta = obj['metadata'] as JsonObject;
  const known = pruneUnknown(spec.fields, obj) as JsonObject;
  if (meta['resourceVersion'] !== undefined && meta['resourceVersion'] !== '') {
    throw new ApiError(
      500,
      'InternalError',
      'Internal error occurred: resourceVersion should not be set on objects to be created',
    );
  }
  return { status: 201, body: wire(spec, store.create(route.resource, known)), warnings };
}

/** PUT of one object: 200, or 201 when it created it (Leases). */
export function update(
  store: ObjectStore,
  route: Route,
  body: Buffer,
  mode: FieldValidation,
): Reply {
  const spec = kindOf(route.resource);
  const obj = objectFor(spec, route, body, 'update');
  const warnings = validateFields(spec, obj, mode);
  const { object, created } = store.update(
    route.resource,
    pruneUnknown(spec.fields, obj) as JsonObject,
  );
  return { status: created ? 201 : 200, body: wire(spec, object), warnings };
}

/**
 * PATCH of one object with a JSON, merge or strategic merge patch: the patch applies to the
 * stored object (resourceVersion included, so a patch that sets another resourceVersion is
 * a precondition and gets 409 Conflict), then goes through `update`. Server-side apply
 * (`application/apply-patch+yaml`) is not implemented: 415, as a server without it answers.
 */
export function patch(
  store: ObjectStore,
  route: Route,
  contentType: string | undefined,
  body: Buffer,
  mode: FieldValidation,
): Reply {
  const spec = kindOf(route.resource);
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (!(PATCH_TYPES as readonly string[]).includes(type)) {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
    );
  }
  const current = store.get(route.resource, route.namespace, route.name ?? '');
  if (!current) throw notFound(spec, route.name ?? '');
  const doc = parseJson(spec, body);
  let patched: JsonObject;
  try {
    patched = applyPatch(type as PatchType, wire(spec, current) as JsonObject, doc, spec);
  } catch (err) {
    if (!(err instanceof PatchError)) throw err;
    if (err.status === 400) throw badRequest(err.message);
    throw new ApiError(422, 'Invalid', err.message);
  }
  const check = Buffer.from(JSON.stringify(patched));
  const obj = objectFor(spec, route, check, 'update');
  const warnings = validateFields(spec, obj, mode);
  const { object } = store.update(route.resource, pruneUnknown(spec.fields, obj) as JsonObject);
  return { status: 200, body: wire(spec, object), warnings };
}

/**
 * DELETE of one object, honouring DeleteOptions preconditions. The reply is the deleted object
 * for kinds whose registry returns it (Services), else a Success Status naming it.
 */
export function remove(store: ObjectStore, route: Route, body: Buffer): Reply {
  const spec = kindOf(route.resource);
  let opts: JsonObject = {};
  if (body.length > 0) {
    const parsed = parseJson(spec, body);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) opts = parsed;
  }
  const pre = (opts['preconditions'] ?? {}) as { resourceVersion?: string; uid?: string };
  const gone = store.remove(route.resource, route.namespace, route.name ?? '', pre);
  if (spec.returnDeletedObject) return { status: 200, body: wire(spec, gone) };
  return {
    status: 200,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: {
        name: gone.metadata.name,
        ...(spec.group !== '' ? { group: spec.group } : {}),
        kind: spec.resource,
        uid: gone.metadata.uid,
      },
    },
  };
}

/**
 * Runs one write request to the end: reads the body, applies create/update/patch/delete to
 * `store` and answers with the object or a Status (ApiError), `Warning` headers included.
 */
export async function mutate(
  store: ObjectStore,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  verb: 'create' | 'update' | 'patch' | 'delete',
  query: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const body = await readBody(req);
    if (verb === 'create' && route.namespace === undefined && kindOf(route.resource).namespaced) {
      return writeMethodNotAllowed(res);
    }
    const mode = fieldValidationOf(query);
    const reply =
      verb === 'create'
        ? create(store, route, body, mode)
        : verb === 'update'
          ? update(store, route, body, mode)
          : verb === 'patch'
            ? patch(store, route, req.headers['content-type'], body, mode)
            : remove(store, route, body);
    for (const w of reply.warnings ?? []) {
      res.appendHeader('Warning', `299 - ${JSON.stringify(w)}`);
    }
    writeJson(res, reply.status, reply.body);
  } catch (err) {
    if (err instanceof ApiError) return writeJson(res, err.code, err.toStatus());
    writeStatus(res, 500, `Internal error occurred: ${(err as Error).message}`);
  }
}
