/**
 * The error registry and docs/errors.md agree, as fastify ties its error codes to its docs
 * (test/internals/errors.test.js): every code has exactly one row, every row names a real code
 * and its class, and says what it means and what to do.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.js';
import { ErrorCodes, KubeLcProxyError } from '../../src/errors.js';

interface Row {
  readonly code: string;
  readonly className: string;
  readonly meaning: string;
  readonly action: string;
}

/** Rows of the markdown table whose first cell is a `KLP_*` code. */
function errorRows(markdown: string): Row[] {
  const out: Row[] = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const code = /^`(KLP_[A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (code === undefined) continue;
    out.push({
      code,
      className: (cells[2] ?? '').replace(/`/g, ''),
      meaning: cells[3] ?? '',
      action: cells[4] ?? '',
    });
  }
  return out;
}

/** Every exported error class with its code, found by constructing it. */
function classesByCode(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || !(value.prototype instanceof KubeLcProxyError)) continue;
    const Ctor = value as unknown as new (...args: string[]) => KubeLcProxyError;
    out.set(new Ctor('x', 'x', 'x', 'x').code, name);
  }
  return out;
}

describe('docs/errors.md', () => {
  it('has one row per registry code and no row for a code that does not exist', async () => {
    const rows = errorRows(await readFile('docs/errors.md', 'utf8'));
    const documented = rows.map((r) => r.code).sort();
    const registry = Object.values(ErrorCodes).sort();
    expect(documented).toEqual(registry);
  });

  it('names the class that carries each code, and says what it means and what to do', async () => {
    const rows = errorRows(await readFile('docs/errors.md', 'utf8'));
    const classes = classesByCode();
    for (const row of rows) {
      expect(row.className, row.code).toBe(classes.get(row.code));
      expect(row.meaning.length, `${row.code}: meaning`).toBeGreaterThan(30);
      expect(row.action.length, `${row.code}: what to do`).toBeGreaterThan(30);
    }
  });

  it('parses the table it checks (a broken table would pass the tests above vacuously)', () => {
    expect(errorRows('| `KLP_X` | `XError` | m | a |\n| `nope` | x | y | z |')).toEqual([
      { code: 'KLP_X', className: 'XError', meaning: 'm', action: 'a' },
    ]);
  });
});
