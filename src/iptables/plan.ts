/**
 * Pure planning of iptables-restore transactions from the current `iptables-save -t nat` text.
 *
 * Both plans run with `iptables-restore --noflush`, so one transaction touches only what it
 * names: everything in the nat table that is not ours is left as it is. Facts this relies on,
 * checked against iptables 1.8.9 on both the nf_tables and the legacy backend:
 * - In `--noflush` mode, a chain declaration `:KUBE-LC-SERVICES - [0:0]` creates the chain when
 *   missing and flushes it when present. Declaring and then appending rewrites the chain in one
 *   step, whatever it held before, so a restart never duplicates a rule.
 * - The whole input is one transaction: when any line fails, nothing is applied.
 * - `iptables-save -t nat` prints the nat table even when it does not exist yet (nf_tables
 *   backend, fresh network namespace): the four built-in chains, empty, policy ACCEPT. The
 *   nf_tables backend only creates the built-in chains it is asked to use (ours: PREROUTING and
 *   OUTPUT), and prints the missing ones the same way.
 */
import { SERVICES_CHAIN, renderServiceRules, type RedirectRule } from './render.js';

/** The comment on our jumps; it names us to anyone reading `iptables-save`. */
export const JUMP_COMMENT = 'kube-lc-proxy service portals';

/**
 * The built-in chains that jump to ours: PREROUTING for traffic from pods (and anything else
 * routed through the node), OUTPUT for processes on the node itself.
 */
export const JUMP_CHAINS = ['PREROUTING', 'OUTPUT'] as const;

const BUILTIN_NAT_CHAINS: ReadonlySet<string> = new Set([
  'PREROUTING',
  'INPUT',
  'OUTPUT',
  'POSTROUTING',
]);

/** One `-A` line of a save: the chain, its arguments split like iptables-restore splits them. */
export interface SavedRule {
  readonly chain: string;
  /** Arguments after `-A <chain>`, unquoted and unescaped. */
  readonly args: readonly string[];
  /** The text after `-A <chain> ` exactly as saved, fit to be replayed after `-D <chain> `. */
  readonly spec: string;
}

/** A chain declaration of a save. `policy` is `-` for user-defined chains. */
export interface SavedChain {
  readonly name: string;
  readonly policy: string;
}

/** The nat table as `iptables-save -t nat` printed it. Fresh objects, owned by the caller. */
export interface NatTable {
  /** Declared chains in save order. Empty when the save had no `*nat` section. */
  readonly chains: readonly SavedChain[];
  /** Rules in save order (per chain, the order packets see them). */
  readonly rules: readonly SavedRule[];
}

/**
 * Splits one line into arguments the way iptables-restore does (`add_param_to_argv`): blanks
 * separate arguments outside double quotes; inside them a backslash takes the next character
 * literally. Used to compare rules by meaning, not by quoting.
 */
export function splitArgs(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let started = false;
  let quoted = false;
  let escaped = false;
  for (const c of line) {
    if (quoted) {
      if (escaped) {
        current += c;
        escaped = false;
      } else if (c === '\\') {
        escaped = true;
      } else if (c === '"') {
        quoted = false;
      } else {
        current += c;
      }
    } else if (c === '"') {
      quoted = true;
      started = true;
    } else if (c === ' ' || c === '\t') {
      if (started) args.push(current);
      current = '';
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (started) args.push(current);
  return args;
}

/**
 * Parses the `*nat` section of `iptables-save` output. Comment lines and `[packets:bytes]`
 * counters are ignored; other tables, if present, are skipped. Lines it does not understand are
 * skipped rather than guessed at: planning then errs towards touching less.
 */
export function parseNatSave(save: string): NatTable {
  return parseTableSave(save, 'nat');
}

/**
 * Parses the `*<table>` section of `iptables-save` output the same way as `parseNatSave` (which
 * is this function for `nat`). The result has the same shape whatever the table.
 */
export function parseTableSave(save: string, tableName: string): NatTable {
  const chains: SavedChain[] = [];
  const rules: SavedRule[] = [];
  let inNat = false;
  for (const raw of save.split('\n')) {
    const line = raw.trim().replace(/^\[\d+:\d+\]\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      inNat = line === `*${tableName}`;
      continue;
    }
    if (!inNat) continue;
    if (line === 'COMMIT') {
      inNat = false;
      continue;
    }
    const chainDecl = /^:(\S+)\s+(\S+)/.exec(line);
    if (chainDecl) {
      chains.push({ name: chainDecl[1]!, policy: chainDecl[2]! });
      continue;
    }
    const rule = /^-A\s+(\S+)\s+(.*)$/.exec(line);
    if (rule) {
      rules.push({ chain: rule[1]!, spec: rule[2]!, args: splitArgs(rule[2]!) });
    }
  }
  return { chains, rules };
}

/** True when the rule jumps or goes to `KUBE-LC-SERVICES`, whatever its matches or comment. */
export function targetsServicesChain(rule: SavedRule): boolean {
  const { args } = rule;
  for (let i = 0; i < args.length - 1; i++) {
    const flag = args[i];
    if (
      (flag === '-j' || flag === '--jump' || flag === '-g' || flag === '--goto') &&
      args[i + 1] === SERVICES_CHAIN
    ) {
      return true;
    }
  }
  return false;
}

/** The arguments of our jump, after `-A <chain>`. */
function jumpSpec(): string {
  return `-m comment --comment "${JUMP_COMMENT}" -j ${SERVICES_CHAIN}`;
}

function isCanonicalJump(rule: SavedRule): boolean {
  const want = splitArgs(jumpSpec());
  return rule.args.length === want.length && rule.args.every((a, i) => a === want[i]);
}

/**
 * Our jumps in a built-in chain: every rule there that targets `KUBE-LC-SERVICES`. Only we put
 * such rules into built-in chains (nobody else knows the chain), so any copy, whatever its
 * comment (older versions may have used another), is ours to move or delete.
 */
function ourJumps(table: NatTable, chain: string): SavedRule[] {
  return table.rules.filter((r) => r.chain === chain && targetsServicesChain(r));
}

/**
 * The jump lines for one built-in chain: none when our jump is already its first rule and
 * its only jump to us; otherwise delete every copy and insert one at position 1. Jumps must come
 * first so no earlier rule (another proxy's DNAT, say) claims a ClusterIP before we see it.
 */
function planJump(table: NatTable, chain: string): string[] {
  const first = table.rules.find((r) => r.chain === chain);
  const ours = ourJumps(table, chain);
  if (ours.length === 1 && first !== undefined && first === ours[0] && isCanonicalJump(first)) {
    return [];
  }
  return [...ours.map((r) => `-D ${chain} ${r.spec}`), `-I ${chain} 1 ${jumpSpec()}`];
}

/**
 * The full `iptables-restore --noflush` input that makes the nat table hold exactly `rules` in
 * `KUBE-LC-SERVICES` and one jump to it at the top of PREROUTING and OUTPUT. Guarantees, given
 * the save it was planned from: the chain is declared (created or flushed) and rewritten in
 * full, so applying the same plan twice leaves the same table; jumps are never duplicated; no
 * rule or chain that is not ours is named. Rules `selectRules` skips (IPv6 among them) are left
 * out; the caller logs them.
 */
export function planSync(currentNatSave: string, rules: readonly RedirectRule[]): string {
  const table = parseNatSave(currentNatSave);
  const lines = ['*nat', `:${SERVICES_CHAIN} - [0:0]`, ...renderServiceRules(rules)];
  // Jumps after the chain declaration: a jump to a chain that does not exist yet fails.
  for (const chain of JUMP_CHAINS) lines.push(...planJump(table, chain));
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/**
 * True when, once `planCleanup` has removed our objects, the nat table would hold nothing at
 * all: no rule, no user-defined chain, every built-in chain with policy ACCEPT.
 */
export function natTableOnlyOurs(table: NatTable): boolean {
  const foreignChain = table.chains.some(
    (c) => c.name !== SERVICES_CHAIN && (!BUILTIN_NAT_CHAINS.has(c.name) || c.policy !== 'ACCEPT'),
  );
  const foreignRule = table.rules.some(
    (r) =>
      r.chain !== SERVICES_CHAIN &&
      !((JUMP_CHAINS as readonly string[]).includes(r.chain) && targetsServicesChain(r)),
  );
  return !foreignChain && !foreignRule;
}

/**
 * The `iptables-restore --noflush` input that removes everything kube-lc-proxy added to the nat
 * table, or `undefined` when nothing of ours is there (cleanup is idempotent).
 *
 * It deletes our jumps from PREROUTING and OUTPUT (every copy), flushes `KUBE-LC-SERVICES` and
 * deletes it. Rules elsewhere that still jump to our chain are not ours: the chain delete then
 * fails with "Device or resource busy" and the whole transaction is rolled back.
 *
 * When the table held nothing but ours, the plan ends with `-X` (no chain name), so that the
 * table is left as if we had never used it. Why this is safe: on the nf_tables backend
 * iptables creates built-in chains only when first used, and a built-in chain is a registered
 * netfilter hook (every new connection then gets a NAT binding). Our sync created PREROUTING
 * and OUTPUT if they were missing; `-X` deletes built-in chains only when they are empty with
 * policy ACCEPT, a state every iptables tool shows exactly like a missing chain, so nothing a
 * user of iptables can see changes, and no packet's fate changes (an empty ACCEPT chain decides
 * nothing). `-X` also deletes user-defined chains, but we add it only when the save showed none
 * besides ours; one created in the moment between our save and our restore would be deleted
 * only if empty and unreferenced (the kernel refuses otherwise, failing the transaction), which
 * again changes no packet's fate. On the legacy backend built-in chains cannot be deleted and
 * `-X` leaves them. An empty `table ip nat` remains on nf_tables: iptables-restore has no way to
 * delete a table short of flushing it whole, which could take rules someone adds concurrently.
 */
export function planCleanup(currentNatSave: string): string | undefined {
  const table = parseNatSave(currentNatSave);
  const lines = ['*nat'];
  for (const chain of JUMP_CHAINS) {
    for (const r of ourJumps(table, chain)) lines.push(`-D ${chain} ${r.spec}`);
  }
  if (table.chains.some((c) => c.name === SERVICES_CHAIN)) {
    // Declaring flushes it (--noflush mode), so the delete finds it empty.
    lines.push(`:${SERVICES_CHAIN} - [0:0]`, `-X ${SERVICES_CHAIN}`);
  }
  if (lines.length === 1) return undefined;
  if (natTableOnlyOurs(table)) lines.push('-X');
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/**
 * `iptables-save` text reduced to what it means: `# Generated by`/`# Completed on` comment lines
 * and blank lines dropped, `[packets:bytes]` counters zeroed, trailing blanks trimmed. Two saves
 * of the same rules normalize to the same string; used to check that cleanup restores the state
 * before the first sync.
 */
export function normalizeSave(save: string): string {
  return save
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}
