import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// docs/design.md's module table must match src/: a row for every folder, a folder for every row.
// A row may name a folder that is not there yet only if it says so ("not built yet"), and then
// must stop saying so once the folder exists.

const HEADING = '## Modules (src/, by domain)';
/** The words a row uses for a folder announced in the design but not in src/ yet. */
const NOT_BUILT = 'not built yet';

interface Row {
  readonly folder: string;
  readonly notBuilt: boolean;
}

/** The rows of the module table, or problems with its shape. */
function moduleTable(markdown: string): { rows: Row[]; problems: string[] } {
  const start = markdown.indexOf(`\n${HEADING}\n`);
  if (start < 0) return { rows: [], problems: [`no "${HEADING}" section`] };
  const body = markdown.slice(start + HEADING.length + 2);
  const end = body.search(/^#{1,2} /m);
  const lines = (end < 0 ? body : body.slice(0, end)).split('\n');
  const rows: Row[] = [];
  const problems: string[] = [];
  let inTable = false;
  for (const line of lines) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line
      .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
      .split('|')
      .map((c) => c.trim());
    if (!inTable) {
      inTable = true;
      if (cells[0] !== 'folder') problems.push(`the table must start with a "folder" header`);
      continue;
    }
    if (cells.every((c) => /^-+$/.test(c))) continue;
    const folder = /^([a-z0-9-]+)\/$/.exec(cells[0] ?? '')?.[1];
    if (folder === undefined) {
      problems.push(`row "${line.slice(0, 60)}" names no folder (a paragraph folded in?)`);
      continue;
    }
    rows.push({ folder, notBuilt: cells.some((c) => c.includes(NOT_BUILT)) });
  }
  if (rows.length === 0 && problems.length === 0) problems.push('the module table has no rows');
  return { rows, problems };
}

/** Everything wrong between the table in `markdown` and the folders of src/. */
function moduleTableProblems(markdown: string, folders: readonly string[]): string[] {
  const { rows, problems } = moduleTable(markdown);
  const out = [...problems];
  const have = new Set(folders);
  const named = new Set<string>();
  for (const r of rows) {
    if (named.has(r.folder)) out.push(`${r.folder}/ has two rows`);
    named.add(r.folder);
    if (!have.has(r.folder) && !r.notBuilt)
      out.push(`${r.folder}/ has a row but no folder in src/ (or say "${NOT_BUILT}")`);
    if (have.has(r.folder) && r.notBuilt)
      out.push(`${r.folder}/ exists now: drop "${NOT_BUILT}" from its row`);
  }
  for (const f of folders) if (!named.has(f)) out.push(`src/${f}/ has no row in the module table`);
  return out;
}

const DESIGN = readFileSync('docs/design.md', 'utf8');
const FOLDERS = readdirSync('src', { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

describe("docs/design.md's module table", () => {
  it('has a row for every folder of src/ and names no folder that is not there', () => {
    expect(FOLDERS.length).toBeGreaterThan(5);
    expect(moduleTableProblems(DESIGN, FOLDERS)).toEqual([]);
  });

  it('is followed by its paragraph, not folded into the table', () => {
    const section = DESIGN.slice(DESIGN.indexOf(HEADING));
    expect(section).toMatch(/\|\n\nPure modules import no net/);
  });

  // Each check on a copy broken on purpose, so that none can pass vacuously.
  const rowOf = (folder: string): string => {
    const row = DESIGN.split('\n').find((l) => l.startsWith(`| ${folder}/ `));
    if (row === undefined) throw new Error(`no row for ${folder}/ to break`);
    return row;
  };

  it.each([
    [
      'a folder without a row',
      (md: string) => md.replace(`${rowOf('proxy')}\n`, ''),
      'src/proxy/ has no row in the module table',
    ],
    [
      'a row without a folder',
      (md: string) => md.replace(rowOf('proxy'), `${rowOf('proxy')}\n| gone/ | was here | no |`),
      'gone/ has a row but no folder in src/',
    ],
    [
      'a paragraph folded into the table',
      (md: string) => md.replace(/\|\n\nPure modules/, '|\n| Pure modules'),
      'names no folder (a paragraph folded in?)',
    ],
    [
      'a folder still announced as not built',
      (md: string) => md.replace(rowOf('drain'), `${rowOf('drain')} ${NOT_BUILT}`),
      `drain/ exists now: drop "${NOT_BUILT}"`,
    ],
    [
      'a folder with two rows',
      (md: string) => md.replace(rowOf('lib'), `${rowOf('lib')}\n${rowOf('lib')}`),
      'lib/ has two rows',
    ],
    ['no table at all', (md: string) => md.replace(HEADING, '## Modules'), 'section'],
  ])('finds %s', (_what, breakIt, problem) => {
    const broken = breakIt(DESIGN);
    expect(broken).not.toBe(DESIGN);
    expect(moduleTableProblems(broken, FOLDERS).join('\n')).toContain(problem);
  });

  it('accepts a row announced as not built while its folder is absent, and only then', () => {
    const without = FOLDERS.filter((f) => f !== 'drain');
    const announced = DESIGN.replace(rowOf('drain'), `${rowOf('drain')} ${NOT_BUILT}`);
    expect(moduleTableProblems(announced, without)).toEqual([]);
    expect(moduleTableProblems(DESIGN, without).join('\n')).toContain(
      'drain/ has a row but no folder',
    );
  });
});
