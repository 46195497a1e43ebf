import { badRequest } from './api-error.js';
import type { StoredObject } from './store.js';

/** A parsed `?fieldSelector=`: the fields every resource supports, metadata.name/namespace. */
export interface FieldSelector {
  matches(o: StoredObject): boolean;
}

const FIELDS: Readonly<Record<string, (o: StoredObject) => string>> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace ?? '',
};

/**
 * Parses `a=b,c!=d` (also `==`). Other fields get 400 `field label not supported: <f>`, as the
 * apiserver answers for a field its resource does not index.
 */
export function parseFieldSelector(source: string | undefined): FieldSelector {
  const text = (source ?? '').trim();
  if (text === '') return { matches: () => true };
  const reqs = text.split(',').map((raw) => {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(raw.trim());
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${raw}'`);
    const field = (m[1] ?? '').trim();
    const get = FIELDS[field];
    if (!get) throw badRequest(`field label not supported: ${field}`);
    const value = (m[3] ?? '').trim();
    return m[2] === '!='
      ? (o: StoredObject) => get(o) !== value
      : (o: StoredObject) => get(o) === value;
  });
  return { matches: (o) => reqs.every((r) => r(o)) };
}
