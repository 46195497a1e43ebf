import { isObject, jsonEqual, PatchError, type Json } from './json-value.js';

/** One RFC 6902 operation. */
interface Operation {
  readonly op: string;
  readonly path: string;
  readonly from?: string;
  readonly value?: Json;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: Json[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`invalid array index "${token}"`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) {
    throw new PatchError(`array index ${i} out of bounds (length ${arr.length})`);
  }
  return i;
}

/** The container of the last token and that token. */
function parentOf(doc: Json, tokens: string[], path: string): { parent: Json; last: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)] as Json;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t] as Json;
    else throw new PatchError(`path "${path}" does not exist`);
  }
  return { parent: cur, last: tokens.at(-1) as string };
}

function get(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const t of parsePointer(path)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)] as Json;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t] as Json;
    else throw new PatchError(`path "${path}" does not exist`);
  }
  return cur;
}

function add(doc: Json, path: string, value: Json): Json {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw new PatchError(`path "${path}" does not exist`);
  return doc;
}

function remove(doc: Json, path: string): Json {
  const tokens = parsePointer(path);
  if (tokens.length === 0) throw new PatchError('cannot remove the whole document');
  const { parent, last } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new PatchError(`path "${path}" does not exist`);
  return doc;
}

/**
 * RFC 6902 JSON Patch (`application/json-patch+json`, `kubectl patch --type json`): add,
 * remove, replace, move, copy and test, applied in order to a copy; any failure (a missing
 * path, an index out of bounds, a failed test) rejects the whole patch with PatchError.
 */
export function applyJsonPatch(target: Json, patch: unknown): Json {
  if (!Array.isArray(patch))
    throw new PatchError('a JSON patch must be an array of operations', 400);
  let doc = structuredClone(target);
  for (const raw of patch as unknown[]) {
    if (!isObject(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') {
      throw new PatchError(`invalid JSON patch operation ${JSON.stringify(raw)}`, 400);
    }
    const op = raw as unknown as Operation;
    const needsValue = op.op === 'add' || op.op === 'replace' || op.op === 'test';
    if (needsValue && !Object.hasOwn(raw, 'value')) {
      throw new PatchError(`"${op.op}" operation without a value`, 400);
    }
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, structuredClone(op.value as Json));
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'replace':
        get(doc, op.path);
        doc =
          parsePointer(op.path).length === 0
            ? structuredClone(op.value as Json)
            : add(remove(doc, op.path), op.path, structuredClone(op.value as Json));
        break;
      case 'move': {
        if (typeof op.from !== 'string') throw new PatchError('"move" operation without from', 400);
        const v = get(doc, op.from);
        doc = add(remove(doc, op.from), op.path, v);
        break;
      }
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError('"copy" operation without from', 400);
        doc = add(doc, op.path, structuredClone(get(doc, op.from)));
        break;
      }
      case 'test':
        if (!jsonEqual(get(doc, op.path), op.value)) {
          throw new PatchError(`testing value ${op.path} failed`);
        }
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${op.op}"`, 400);
    }
  }
  return doc;
}
