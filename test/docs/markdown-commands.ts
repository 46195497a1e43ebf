/**
 * The runnable steps of a tutorial: every line of its ```sh blocks, in order, each with the
 * output the following ```text block shows (attached to the last command of the sh block).
 * Pure, so the tutorial test and its own unit test share one reading of the document.
 */
export interface DocStep {
  readonly command: string;
  /** The lines the output must contain, in order; undefined when the doc shows none. */
  readonly expected: readonly string[] | undefined;
  /** 1-based line of the command in the markdown, for messages. */
  readonly line: number;
}

/** Parses the steps of `markdown`. Blank lines and `#` comment lines in sh blocks are skipped. */
export function docSteps(markdown: string): DocStep[] {
  const steps: { command: string; expected: string[] | undefined; line: number }[] = [];
  const lines = markdown.split('\n');
  let fence: 'sh' | 'text' | 'other' | undefined;
  let text: string[] = [];
  let lastShIndex = -1;
  for (const [i, raw] of lines.entries()) {
    const open = /^```(\w*)\s*$/.exec(raw);
    if (fence === undefined && open) {
      const lang = open[1] ?? '';
      fence = lang === 'sh' ? 'sh' : lang === 'text' ? 'text' : 'other';
      text = [];
      continue;
    }
    if (fence !== undefined && /^```\s*$/.test(raw)) {
      if (fence === 'text') {
        const target = steps[lastShIndex];
        if (target === undefined) throw new Error(`line ${i + 1}: output block before any command`);
        if (target.expected !== undefined)
          throw new Error(`line ${i + 1}: two output blocks for one command`);
        target.expected = text.filter((l) => l.trim() !== '');
      }
      fence = undefined;
      continue;
    }
    if (fence === 'sh') {
      const cmd = raw.trim();
      if (cmd === '' || cmd.startsWith('#')) continue;
      steps.push({ command: cmd, expected: undefined, line: i + 1 });
      lastShIndex = steps.length - 1;
    } else if (fence === 'text') {
      text.push(raw);
    }
  }
  if (fence !== undefined) throw new Error('unterminated code block');
  return steps;
}

/**
 * A line as compared: runs of spaces collapsed, ages (`0s`, `3m12s`) and the service table
 * version replaced, since they differ from run to run.
 */
export function normalizeLine(line: string): string {
  return line
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\b\d+[smhd](\d+[smhd])?\b/g, '<age>')
    .replace(/service table version \d+/, 'service table version N');
}

/** Whether every expected line appears in `output`, in order (other lines may come between). */
export function containsInOrder(output: string, expected: readonly string[]): boolean {
  const actual = output.split('\n').map(normalizeLine);
  let at = 0;
  for (const want of expected.map(normalizeLine)) {
    const i = actual.indexOf(want, at);
    if (i < 0) return false;
    at = i + 1;
  }
  return true;
}
