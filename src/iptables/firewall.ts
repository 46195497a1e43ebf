/**
 * Pure planning of the filter-table chain `KUBE-LC-FIREWALL`, which keeps the listeners private
 * to the node. In intercept `iptables` mode the listeners bind 0.0.0.0, so without it anyone who
 * can reach the node could connect to `nodeIP:<proxy port>` and reach a ClusterIP-only Service.
 *
 * The chain, jumped to from the top of INPUT, drops every new TCP connection to a proxy port that
 * was not redirected: REDIRECT is a form of DNAT, so conntrack marks redirected connections
 * with the DNAT state whether they came through PREROUTING (pods, other nodes) or OUTPUT
 * (processes on the node). Replies to the node's own outgoing connections (ESTABLISHED,
 * RELATED) pass, so a port in the range that the kernel once lent to an outgoing connection
 * keeps working. The whole `--proxy-port-range` is covered by one rule, so a new listener is
 * protected from the moment it binds; listener ports outside the range (adopted from an older
 * version, which let the kernel choose) get one rule each.
 */
import { parseTableSave, splitArgs, type NatTable, type SavedRule } from './plan.js';
import { quoteComment } from './render.js';

/** Our chain in the filter table. */
export const FIREWALL_CHAIN = 'KUBE-LC-FIREWALL';
/** The comment on our jump from INPUT. */
export const FIREWALL_JUMP_COMMENT = 'kube-lc-proxy firewall';

const BUILTIN_FILTER_CHAINS: ReadonlySet<string> = new Set(['INPUT', 'FORWARD', 'OUTPUT']);

/** An inclusive range of ports (same shape as proxy/port-allocator.ts `PortRange`). */
export interface FirewallRange {
  readonly first: number;
  readonly last: number;
}

function dropRule(comment: string, ports: string): string {
  return (
    `-A ${FIREWALL_CHAIN} -p tcp -m comment --comment ${quoteComment(comment)} ` +
    `-m tcp --dport ${ports} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`
  );
}

/**
 * The body of `KUBE-LC-FIREWALL`, exactly as iptables-save prints it back: one rule for the
 * range, then one per listener port outside it, in ascending order, each port once. Ports that
 * are not integers in 1..65535 are left out.
 */
export function renderFirewallRules(
  range: FirewallRange,
  listenerPorts: Iterable<number>,
): string[] {
  const ports = range.first === range.last ? String(range.first) : `${range.first}:${range.last}`;
  const lines = [dropRule('kube-lc-proxy port range', ports)];
  const outside = new Set<number>();
  for (const p of listenerPorts) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) continue;
    if (p >= range.first && p <= range.last) continue;
    outside.add(p);
  }
  for (const p of [...outside].sort((a, b) => a - b)) {
    lines.push(dropRule('kube-lc-proxy listener', String(p)));
  }
  return lines;
}

function jumpSpec(): string {
  return `-m comment --comment "${FIREWALL_JUMP_COMMENT}" -j ${FIREWALL_CHAIN}`;
}

function targetsFirewall(rule: SavedRule): boolean {
  const a = rule.args;
  for (let i = 0; i < a.length - 1; i++) {
    if (['-j', '--jump', '-g', '--goto'].includes(a[i]!) && a[i + 1] === FIREWALL_CHAIN)
      return true;
  }
  return false;
}

function ourJumps(table: NatTable): SavedRule[] {
  return table.rules.filter((r) => r.chain === 'INPUT' && targetsFirewall(r));
}

/**
 * The `iptables-restore --noflush` input that makes the filter table hold exactly our chain
 * (`renderFirewallRules`) and one jump to it at the top of INPUT. Like the nat plan: the chain is
 * declared (created or flushed) and rewritten in full, jumps are never duplicated, and nothing
 * that is not ours is named.
 */
export function planFirewallSync(
  currentFilterSave: string,
  range: FirewallRange,
  listenerPorts: Iterable<number>,
): string {
  const table = parseTableSave(currentFilterSave, 'filter');
  const lines = [
    '*filter',
    `:${FIREWALL_CHAIN} - [0:0]`,
    ...renderFirewallRules(range, listenerPorts),
  ];
  const first = table.rules.find((r) => r.chain === 'INPUT');
  const ours = ourJumps(table);
  const want = splitArgs(jumpSpec());
  const canonical =
    ours.length === 1 &&
    first !== undefined &&
    first === ours[0] &&
    first.args.length === want.length &&
    first.args.every((a, i) => a === want[i]);
  if (!canonical) {
    lines.push(...ours.map((r) => `-D INPUT ${r.spec}`), `-I INPUT 1 ${jumpSpec()}`);
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/**
 * The input that removes our jump(s) and chain from the filter table, or `undefined` when none
 * is there. Ends with `-X` when the table held nothing but ours, for the reasons given at
 * `planCleanup` (plan.ts): the table is then left as if we had never used it.
 */
export function planFirewallCleanup(currentFilterSave: string): string | undefined {
  const table = parseTableSave(currentFilterSave, 'filter');
  const lines = ['*filter'];
  for (const r of ourJumps(table)) lines.push(`-D INPUT ${r.spec}`);
  if (table.chains.some((c) => c.name === FIREWALL_CHAIN)) {
    lines.push(`:${FIREWALL_CHAIN} - [0:0]`, `-X ${FIREWALL_CHAIN}`);
  }
  if (lines.length === 1) return undefined;
  const foreignChain = table.chains.some(
    (c) =>
      c.name !== FIREWALL_CHAIN && (!BUILTIN_FILTER_CHAINS.has(c.name) || c.policy !== 'ACCEPT'),
  );
  const foreignRule = table.rules.some(
    (r) => r.chain !== FIREWALL_CHAIN && !(r.chain === 'INPUT' && targetsFirewall(r)),
  );
  if (!foreignChain && !foreignRule) lines.push('-X');
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}
