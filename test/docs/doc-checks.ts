import { execFileSync } from 'node:child_process';

/**
 * Small parsers the docs tests use: metric names in text, the options of `--help`, the flag
 * tables of docs/operations.md, and an XML well-formedness check for the hand-written SVGs.
 * Each returns plain data; the tests decide what is wrong.
 */

/** Every `kube_lc_proxy_*` name in `text`, once each, in order of first appearance. */
export function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(/\bkube_lc_proxy_[a-z0-9_]*[a-z0-9]/g) ?? [])];
}

/**
 * Whether `name` is a series Prometheus would have for the registry `types` (metric name to
 * prom-client type): the metric itself, or `_bucket`, `_sum` and `_count` of a histogram.
 */
export function isKnownSeries(name: string, types: ReadonlyMap<string, string>): boolean {
  if (types.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && types.get(m[1] as string) === 'histogram';
}

/** One option as `--help` prints it. `defaultValue` is undefined when none is printed. */
export interface HelpOption {
  readonly flag: string;
  readonly defaultValue: string | undefined;
}

/** Parses the Options section of a yargs `--help` text (wrapped lines joined back). */
export function parseHelpOptions(help: string): HelpOption[] {
  const start = help.indexOf('\nOptions:\n');
  if (start < 0) throw new Error('no Options: section in the help text');
  const blocks: string[][] = [];
  for (const line of help.slice(start + '\nOptions:\n'.length).split('\n')) {
    // Options start near the left margin; wrapped description lines are indented far more.
    if (/^ {1,10}(?:-\w, )?--[\w-]+/.test(line)) blocks.push([line]);
    else if (line.trim() !== '') blocks.at(-1)?.push(line);
  }
  return blocks.map((lines) => {
    const text = lines.map((l) => l.trim()).join(' ');
    const flag = /^(?:-\w, )?--([\w-]+)/.exec(text)?.[1] as string;
    const def = /\[default: ([^\]]*)\]/.exec(text)?.[1];
    return { flag, defaultValue: def === undefined ? undefined : def.replace(/^"(.*)"$/, '$1') };
  });
}

/** `kube-lc-proxy COMMAND --help`, run from the built CLI (the test setup builds dist/). */
export function cliHelp(command: string): string {
  return execFileSync(process.execPath, ['bin/kube-lc-proxy.js', command, '--help'], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '', NODE_NAME: '' },
  });
}

/** One row of a flag table: | `--flag` | default | ... | */
export interface FlagRow {
  readonly flag: string;
  /** The default cell with backticks removed; `(none)` when the flag has no default. */
  readonly defaultValue: string;
}

/**
 * The flag tables under each `### COMMAND` heading of `markdown`: rows whose first cell is a
 * flag in backticks. Returns command name to rows.
 */
export function flagTables(markdown: string): Map<string, FlagRow[]> {
  const out = new Map<string, FlagRow[]>();
  let section: string | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^###\s+(\S+)\s*$/.exec(line);
    if (heading !== null) {
      section = heading[1] as string;
      continue;
    }
    if (/^##\s/.test(line)) section = undefined;
    const row = /^\|\s*`--([\w-]+)`\s*\|([^|]*)\|/.exec(line);
    if (row === null || section === undefined) continue;
    const rows = out.get(section) ?? [];
    rows.push({
      flag: row[1] as string,
      defaultValue: (row[2] as string).replace(/`/g, '').trim(),
    });
    out.set(section, rows);
  }
  return out;
}

/** The fields of one `### kube_lc_proxy_*` section of docs/metrics.md. */
export interface MetricSection {
  readonly name: string;
  readonly type: string | undefined;
  /** Label names from the `**Labels:**` field (values in parentheses left out); [] for none. */
  readonly labels: string[] | undefined;
}

/** Parses the per-metric sections of docs/metrics.md. */
export function metricSections(markdown: string): MetricSection[] {
  const parts = markdown.split(/^### /m).slice(1);
  const out: MetricSection[] = [];
  for (const part of parts) {
    const name = /^(kube_lc_proxy_\w+)\s*\n/.exec(part)?.[1];
    if (name === undefined) continue;
    const type = /\*\*Type:\*\*\s*([a-z]+)/.exec(part)?.[1];
    const field = /\*\*Labels:\*\*([\s\S]*?)(?:\n-\s|\n\n|$)/.exec(part)?.[1];
    let labels: string[] | undefined;
    if (field !== undefined) {
      let text = field;
      // Drop parenthesised lists of values, innermost first.
      for (let prev = ''; prev !== text;) {
        prev = text;
        text = text.replace(/\([^()]*\)/g, '');
      }
      labels = /^\s*none\b/.test(text)
        ? []
        : [...text.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string);
    }
    out.push({ name, type, labels });
  }
  return out;
}

/** Rows `| \`kube_lc_proxy_x\` | type |` of the tables in docs/metrics.md. */
export function metricTableRows(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of markdown.matchAll(/^\|\s*`(kube_lc_proxy_\w+)`\s*\|\s*([a-z]+)\s*\|/gm))
    out.set(m[1] as string, m[2] as string);
  return out;
}

const NAME = '[A-Za-z_][\\w.:-]*';
const ATTRIBUTE = new RegExp(`\\s+(${NAME})\\s*=\\s*("[^"<]*"|'[^'<]*')`, 'y');
const REFERENCE = /&(?:[A-Za-z_][\w.-]*|#[0-9]+|#x[0-9A-Fa-f]+);/y;
const REFERENCE_AT_START = new RegExp(`^${REFERENCE.source}`);

/** The root element of a well-formed document: its name and attributes. */
export interface XmlRoot {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  /** Every element name, in document order (root included). */
  readonly elements: readonly string[];
}

/**
 * Checks that `text` is a well-formed XML document (the subset hand-written SVG uses: an optional
 * declaration, elements, attributes, character data, references, comments, CDATA) and returns its
 * root. Throws an Error naming the offset of the first problem. Not a validating parser: it does
 * not know SVG, only XML's rules for tags, nesting, attributes, `<` and `&`.
 */
export function checkWellFormedXml(text: string): XmlRoot {
  let i = 0;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new Error(`not well-formed XML at line ${line} (offset ${i}): ${what}`);
  };
  const stack: string[] = [];
  const elements: string[] = [];
  let root: XmlRoot | undefined;
  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chars = text.slice(i, lt < 0 ? text.length : lt);
    for (let k = chars.indexOf('&'); k >= 0; k = chars.indexOf('&', k + 1)) {
      REFERENCE.lastIndex = i + k;
      if (!REFERENCE.test(text)) {
        i += k;
        fail('"&" that does not start a reference');
      }
    }
    if (chars.trim() !== '' && stack.length === 0) fail('text outside the root element');
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      if (text.slice(i + 4, end).includes('--')) fail('"--" inside a comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', i)) {
      if (stack.length === 0) fail('CDATA outside the root element');
      const end = text.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA section');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', i) || text.startsWith('<!', i)) fail('unexpected markup declaration');
    if (text.startsWith('</', i)) {
      const m = new RegExp(`</(${NAME})\\s*>`, 'y');
      m.lastIndex = i;
      const end = m.exec(text);
      if (end === null) fail('bad end tag');
      const name = (end as RegExpExecArray)[1] as string;
      const open = stack.pop();
      if (open !== name) fail(`end tag </${name}> closes <${open ?? 'nothing'}>`);
      i = m.lastIndex;
      continue;
    }
    const start = new RegExp(`<(${NAME})`, 'y');
    start.lastIndex = i;
    const tag = start.exec(text);
    if (tag === null) fail('"<" that starts no tag');
    const name = (tag as RegExpExecArray)[1] as string;
    if (stack.length === 0 && root !== undefined) fail(`a second root element <${name}>`);
    i = start.lastIndex;
    const attributes = new Map<string, string>();
    for (;;) {
      ATTRIBUTE.lastIndex = i;
      const a = ATTRIBUTE.exec(text);
      if (a === null) break;
      const attr = a[1] as string;
      if (attributes.has(attr)) fail(`attribute ${attr} twice on <${name}>`);
      const value = (a[2] as string).slice(1, -1);
      for (let k = value.indexOf('&'); k >= 0; k = value.indexOf('&', k + 1)) {
        if (!REFERENCE_AT_START.test(value.slice(k)))
          fail(`"&" that does not start a reference in attribute ${attr}`);
      }
      attributes.set(attr, value);
      i = ATTRIBUTE.lastIndex;
    }
    const close = /\s*(\/?)>/y;
    close.lastIndex = i;
    const c = close.exec(text);
    if (c === null) fail(`bad attribute or unclosed start tag <${name}>`);
    i = close.lastIndex;
    elements.push(name);
    if (stack.length === 0) root = { name, attributes, elements };
    if ((c as RegExpExecArray)[1] !== '/') stack.push(name);
  }
  if (stack.length > 0) fail(`<${stack.at(-1)}> is never closed`);
  if (root === undefined) return fail('no root element');
  return root;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** Anchors of every heading of a markdown text (outside code blocks). */
export function headingAnchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (m !== null) out.add(headingSlug(m[1] as string));
  }
  return out;
}

/** Links of a markdown text to local files, with their anchors: [target file or '', anchor]. */
export function localLinks(markdown: string): { file: string; anchor: string | undefined }[] {
  const out: { file: string; anchor: string | undefined }[] = [];
  for (const m of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1] as string;
    if (/^[a-z]+:/.test(target)) continue;
    const [file, anchor] = target.split('#') as [string, string | undefined];
    out.push({ file, anchor });
  }
  return out;
}
