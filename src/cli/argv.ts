import { ConfigError } from '../errors.js';

/** The flags of one command by type, as yargs knows them (`Argv.getOptions()`). */
export interface FlagTypes {
  readonly string: readonly string[];
  readonly boolean: readonly string[];
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Checks `argv` before yargs reads it, for the mistakes yargs would turn into something else:
 * - a flag that takes a value given none (last, or followed by another flag): yargs would hand
 *   over an empty string or the default;
 * - a value that starts with `-` (`--shutdown-grace -5s`): yargs reads it as short flags
 *   (`Unknown arguments: 5, s`); it is joined to its flag (`--shutdown-grace=-5s`) so that the
 *   flag's own parser rejects it by name;
 * - a flag given twice: yargs would join both values into a list (`file:a,file:b`).
 * Returns the argv to hand to yargs. Throws a ConfigError naming the flag. Pure.
 */
export function checkArgv(argv: readonly string[], types: FlagTypes): string[] {
  const takesValue = new Set(types.string.map(kebab));
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)(=.*)?$/.exec(token);
    if (m === null) {
      out.push(token);
      continue;
    }
    const name = kebab(m[1] as string);
    const base = name.startsWith('no-') && !takesValue.has(name) ? name.slice(3) : name;
    const flag = `--${base}`;
    const next = argv[i + 1];
    const shown = takesValue.has(name) && m[2] === undefined ? `${token} ${next ?? ''}` : token;
    const earlier = seen.get(base);
    if (earlier !== undefined)
      throw new ConfigError(flag, `given more than once (${earlier}, then ${shown}); give it once`);
    seen.set(base, shown.trim());
    if (!takesValue.has(name) || m[2] !== undefined) {
      out.push(token);
      continue;
    }
    if (next === undefined || next === '--' || (next.startsWith('-') && !/^-\d/.test(next))) {
      throw new ConfigError(
        flag,
        next === undefined ? 'needs a value' : `needs a value, got the flag ${next}`,
      );
    }
    // A value of its own, possibly negative: keep it with its flag.
    out.push(`${token}=${next}`);
    i++;
  }
  return out;
}
