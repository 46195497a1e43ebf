import { ManifestError } from '../errors.js';
import { decodeDocuments, type DecodedDocument } from './decode-worker.js';
import {
  describeObject,
  validateEndpointSlice,
  validateService,
} from '../servicetable/validate.js';

/** A Service or EndpointSlice read from a manifests file, validated. */
export interface ManifestObject {
  readonly kind: 'Service' | 'EndpointSlice';
  readonly namespace: string;
  readonly name: string;
  /** The object as decoded, for the sink (which validates it again, cheaply). */
  readonly raw: Record<string, unknown>;
}

export interface ParsedManifests {
  readonly objects: readonly ManifestObject[];
  /** Objects read but not used, with why: other kinds, headless Services, FQDN slices... */
  readonly ignored: readonly string[];
}

const API_VERSIONS = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1' } as const;
/** List kinds `kubectl get -o yaml` prints, and the kind of their items. */
const LIST_ITEM_KIND: Record<string, string | undefined> = {
  List: undefined,
  ServiceList: 'Service',
  EndpointSliceList: 'EndpointSlice',
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a manifests file's text: YAML or JSON, several documents, `List` objects, as
 * `kubectl get -o yaml` prints them. Every Service and EndpointSlice is validated in full; the
 * first problem throws a ManifestError naming the file, the object and the field. Other kinds
 * are ignored (and listed). Pure apart from the message text.
 */
export function parseManifests(text: string, file: string): ParsedManifests {
  return manifestsFromDocuments(decodeDocuments(text), file);
}

/** The validation half of `parseManifests`, on documents already decoded. */
export function manifestsFromDocuments(
  docs: readonly DecodedDocument[],
  file: string,
): ParsedManifests {
  const objects: ManifestObject[] = [];
  const ignored: string[] = [];
  const seen = new Set<string>();
  let index = 0;
  for (const doc of docs) {
    index++;
    const where = `document ${index}`;
    if (doc.error !== undefined)
      throw new ManifestError(file, where, undefined, `not valid YAML or JSON: ${doc.error}`);
    const value: unknown = doc.value;
    if (value === null || value === undefined) continue;
    if (!isObj(value))
      throw new ManifestError(file, where, undefined, 'must be an object with a kind');
    const kind = value.kind;
    if (typeof kind === 'string' && kind in LIST_ITEM_KIND) {
      if (!Array.isArray(value.items))
        throw new ManifestError(file, `${kind} (${where})`, 'items', 'must be a list');
      value.items.forEach((item: unknown, i) => {
        const itemKind = LIST_ITEM_KIND[kind];
        const obj =
          isObj(item) && itemKind !== undefined && item.kind === undefined
            ? { kind: itemKind, ...item }
            : item;
        add(obj, `${where} items[${i}]`);
      });
    } else {
      add(value, where);
    }
  }
  return { objects, ignored };

  function add(value: unknown, where: string): void {
    if (!isObj(value))
      throw new ManifestError(file, where, undefined, 'must be an object with a kind');
    const kind = value.kind;
    if (kind !== 'Service' && kind !== 'EndpointSlice') {
      ignored.push(
        `${describeObject(typeof kind === 'string' ? kind : `(no kind, ${where})`, value)}: only Service and EndpointSlice are read`,
      );
      return;
    }
    const name = describeObject(kind, value);
    const label = name === kind ? `${kind} (${where})` : name;
    const want = API_VERSIONS[kind];
    if (value.apiVersion !== undefined && value.apiVersion !== want) {
      throw new ManifestError(
        file,
        label,
        'apiVersion',
        `must be ${want}, got ${JSON.stringify(value.apiVersion)}`,
      );
    }
    const v = kind === 'Service' ? validateService(value) : validateEndpointSlice(value);
    const problem = v.problems[0];
    if (problem !== undefined) throw new ManifestError(file, label, problem.field, problem.message);
    if (v.id === undefined) throw new ManifestError(file, label, 'metadata.name', 'is missing');
    const key = `${kind} ${v.id.namespace}/${v.id.name}`;
    if (seen.has(key))
      throw new ManifestError(file, label, 'metadata.name', 'appears twice in the file');
    seen.add(key);
    if (v.skip !== undefined) ignored.push(`${v.skip.object}: ${v.skip.reason}`);
    for (const note of v.notes) ignored.push(`${note.object}: ${note.reason}`);
    objects.push({ kind, namespace: v.id.namespace, name: v.id.name, raw: value });
  }
}
