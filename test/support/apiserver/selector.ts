/**
 * Label selectors as the API server parses them from `?labelSelector=`: comma-separated
 * requirements, all of which must hold (AND). Supported: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
 * `k in (a,b)`, `k notin (a,b)`. `k!=v` and `notin` also match objects without the label, as
 * in apimachinery.
 */
export type Labels = Readonly<Record<string, string>> | undefined;

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: readonly string[] };

/** A parsed selector. `matches` is pure; an empty selector matches everything. */
export interface LabelSelector {
  readonly source: string;
  matches(labels: Labels): boolean;
}

/** Thrown for a selector the API server would answer with 400 BadRequest. */
export class SelectorParseError extends Error {}

const KEY =
  /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?$/;

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function checkKey(key: string, raw: string): string {
  if (!KEY.test(key)) throw new SelectorParseError(`invalid label key in "${raw}"`);
  return key;
}

function checkValue(value: string, raw: string): string {
  if (!VALUE.test(value)) throw new SelectorParseError(`invalid label value in "${raw}"`);
  return value;
}

function parseRequirement(raw: string): Requirement {
  const s = raw.trim();
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(s);
  if (set) {
    const values = (set[3] ?? '')
      .split(',')
      .map((v) => checkValue(v.trim(), raw))
      .filter((v) => v !== '');
    return { op: set[2] === 'in' ? 'in' : 'notin', key: checkKey(set[1] ?? '', raw), values };
  }
  if (s.startsWith('!')) return { op: 'notexists', key: checkKey(s.slice(1).trim(), raw) };
  const cmp = /^([^=!]+)(==|=|!=)(.*)$/.exec(s);
  if (cmp) {
    const key = checkKey((cmp[1] ?? '').trim(), raw);
    const value = checkValue((cmp[3] ?? '').trim(), raw);
    return { op: cmp[2] === '!=' ? 'neq' : 'eq', key, value };
  }
  return { op: 'exists', key: checkKey(s, raw) };
}

function holds(r: Requirement, labels: Labels): boolean {
  const has = labels !== undefined && Object.hasOwn(labels, r.key);
  const v = has ? labels[r.key] : undefined;
  switch (r.op) {
    case 'eq':
      return has && v === r.value;
    case 'neq':
      return !has || v !== r.value;
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'in':
      return has && r.values.includes(v ?? '');
    case 'notin':
      return !has || !r.values.includes(v ?? '');
  }
}

/** Parses `source`; throws SelectorParseError for syntax the API server rejects. */
export function parseLabelSelector(source: string | null | undefined): LabelSelector {
  const text = (source ?? '').trim();
  const reqs = text === '' ? [] : splitTopLevel(text).map(parseRequirement);
  return { source: text, matches: (labels) => reqs.every((r) => holds(r, labels)) };
}
