/**
 * The known fields of a kind, for server-side field validation (`?fieldValidation=Strict`,
 * which kubectl sends once OpenAPI says the server supports it). A schema is a leaf type, a
 * map of strings, a list of one schema, or an object of named fields. Unknown fields and
 * wrong JSON types are reported with the path the apiserver uses: `spec.ports[0].prot`.
 */
export type FieldSchema =
  | 'string'
  | 'integer'
  | 'boolean'
  | 'int-or-string'
  | 'string-map'
  | 'any'
  | readonly [FieldSchema]
  | { readonly [field: string]: FieldSchema };

/** One finding: an unknown field, or a value of the wrong JSON type. */
export interface FieldProblem {
  readonly kind: 'unknown' | 'type';
  readonly path: string;
  readonly message: string;
}

function typeOk(schema: string, v: unknown): boolean {
  switch (schema) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'int-or-string':
      return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
    case 'string-map':
      return (
        v !== null &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        Object.values(v).every((x) => typeof x === 'string')
      );
    default:
      return true;
  }
}

/** Every problem of `value` against `schema` (null is accepted anywhere, as Go's decoder does). */
export function checkFields(schema: FieldSchema, value: unknown, path = ''): FieldProblem[] {
  if (value === null || value === undefined) return [];
  if (typeof schema === 'string') {
    if (typeOk(schema, value)) return [];
    return [{ kind: 'type', path, message: `expected ${schema}, got ${JSON.stringify(value)}` }];
  }
  if (Array.isArray(schema)) {
    if (!Array.isArray(value)) return [{ kind: 'type', path, message: 'expected a list' }];
    return value.flatMap((v, i) => checkFields(schema[0] as FieldSchema, v, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    return [{ kind: 'type', path, message: 'expected an object' }];
  }
  const fields = schema as { readonly [field: string]: FieldSchema };
  const out: FieldProblem[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = path === '' ? k : `${path}.${k}`;
    const sub = fields[k];
    if (sub === undefined) out.push({ kind: 'unknown', path: p, message: `unknown field "${p}"` });
    else out.push(...checkFields(sub, v, p));
  }
  return out;
}

/** metav1.ObjectMeta. */
export const OBJECT_META: FieldSchema = {
  name: 'string',
  generateName: 'string',
  namespace: 'string',
  selfLink: 'string',
  uid: 'string',
  resourceVersion: 'string',
  generation: 'integer',
  creationTimestamp: 'string',
  deletionTimestamp: 'string',
  deletionGracePeriodSeconds: 'integer',
  labels: 'string-map',
  annotations: 'string-map',
  ownerReferences: [
    {
      apiVersion: 'string',
      kind: 'string',
      name: 'string',
      uid: 'string',
      controller: 'boolean',
      blockOwnerDeletion: 'boolean',
    },
  ],
  finalizers: ['string'],
  managedFields: ['any'],
};

/** The fields every object has at its root. */
export const TYPE_META: { readonly [field: string]: FieldSchema } = {
  apiVersion: 'string',
  kind: 'string',
  metadata: OBJECT_META,
};

/** metav1.Condition, used in Service status. */
export const CONDITION: FieldSchema = {
  type: 'string',
  status: 'string',
  observedGeneration: 'integer',
  lastTransitionTime: 'string',
  reason: 'string',
  message: 'string',
};

/**
 * A copy of `value` without the fields `schema` does not know: what decoding into the Go types
 * does, so unknown fields are never stored (under Warn and Ignore too).
 */
export function pruneUnknown(schema: FieldSchema, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof schema === 'string') return value;
  if (Array.isArray(schema)) {
    return Array.isArray(value)
      ? value.map((v) => pruneUnknown(schema[0] as FieldSchema, v))
      : value;
  }
  if (Array.isArray(value)) return value;
  const fields = schema as { readonly [field: string]: FieldSchema };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const sub = fields[k];
    if (sub !== undefined) out[k] = pruneUnknown(sub, v);
  }
  return out;
}
