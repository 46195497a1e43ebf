/**
 * Pure rendering of the REDIRECT rules of chain `KUBE-LC-SERVICES` (nat table) as
 * iptables-restore text. No I/O here: `plan.ts` wraps these lines into a restore transaction and
 * `apply.ts` runs it.
 *
 * The text is written exactly the way `iptables-save` prints it back (same match order, same
 * quoting), so a saved table can be compared with what we rendered line by line.
 */

/** Our chain in the nat table. Everything named `KUBE-LC-*` belongs to kube-lc-proxy. */
export const SERVICES_CHAIN = 'KUBE-LC-SERVICES';

/**
 * Longest comment the comment match keeps: `XT_MAX_COMMENT_LEN` is 256 bytes including the
 * terminating NUL. The nf_tables backend silently cuts longer comments to 255 bytes (the legacy
 * backend rejects them), so we cut first and the saved text stays equal to what we rendered.
 */
export const MAX_COMMENT_LENGTH = 255;

/**
 * One Service port redirected to this proxy's listener for it. Plain data, never mutated here.
 * `servicePort` is `namespace/name:port` and becomes the rule comment; `proxyPort` is the port the
 * kernel gave our listener (listen on port 0), the target of `REDIRECT --to-ports`.
 */
export interface RedirectRule {
  readonly servicePort: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly proxyPort: number;
}

/**
 * Why a rule is not rendered. `ipv6`: only the IPv4 nat table is programmed for now (an
 * ip6tables twin would be needed; the caller logs these). `invalid-address`: not a canonical
 * dotted quad (e.g. `None` of a headless Service). `invalid-port`: `port` or `proxyPort` is not
 * an integer in 1..65535. `duplicate`: another rule already redirects the same ClusterIP:port;
 * only the first in sort order could ever match, so the others are dead weight.
 */
export const SkipReasons = ['ipv6', 'invalid-address', 'invalid-port', 'duplicate'] as const;
/** One of `SkipReasons`; stable, fit for a metric label. */
export type SkipReason = (typeof SkipReasons)[number];

/** A rule `selectRules` left out, with the reason, for the caller to log once and count. */
export interface SkippedRule {
  readonly rule: RedirectRule;
  readonly reason: SkipReason;
}

/** The outcome of `selectRules`: renderable rules in render order, and the ones left out. */
export interface RuleSelection {
  readonly rules: readonly RedirectRule[];
  readonly skipped: readonly SkippedRule[];
}

const IPV4_OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
// Canonical form only: no leading zeros, which inet_aton-style parsers would read as octal.
const IPV4 = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);

/** True for a canonical dotted-quad IPv4 address (`10.96.0.1`; not `010.96.0.1`, not IPv6). */
export function isIPv4(address: string): boolean {
  return IPV4.test(address);
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/**
 * The deterministic render order: ClusterIP (numerically), port, then servicePort and proxyPort
 * as tie-breakers. The order of the input never shows in the output, so equal tables render to
 * equal text and a restart rewrites the same bytes.
 */
export function compareRules(a: RedirectRule, b: RedirectRule): number {
  const ipA = isIPv4(a.clusterIP) ? ipv4ToNumber(a.clusterIP) : -1;
  const ipB = isIPv4(b.clusterIP) ? ipv4ToNumber(b.clusterIP) : -1;
  if (ipA !== ipB) return ipA - ipB;
  if (a.clusterIP !== b.clusterIP) return a.clusterIP < b.clusterIP ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  if (a.servicePort !== b.servicePort) return a.servicePort < b.servicePort ? -1 : 1;
  return a.proxyPort - b.proxyPort;
}

/**
 * Sorts `rules` into render order and leaves out the ones that cannot or need not be rendered
 * (see `SkipReason`). IPv6 ClusterIPs are skipped, not rejected: dual-stack Services still get
 * their IPv4 portal. Never throws; the input array is not modified.
 */
export function selectRules(rules: readonly RedirectRule[]): RuleSelection {
  const kept: RedirectRule[] = [];
  const skipped: SkippedRule[] = [];
  const seen = new Set<string>();
  for (const rule of [...rules].sort(compareRules)) {
    let reason: SkipReason | undefined;
    if (!isIPv4(rule.clusterIP)) {
      reason = rule.clusterIP.includes(':') ? 'ipv6' : 'invalid-address';
    } else if (!isPort(rule.port) || !isPort(rule.proxyPort)) {
      reason = 'invalid-port';
    } else if (seen.has(`${rule.clusterIP}:${rule.port}`)) {
      reason = 'duplicate';
    }
    if (reason) {
      skipped.push({ rule, reason });
      continue;
    }
    seen.add(`${rule.clusterIP}:${rule.port}`);
    kept.push(rule);
  }
  return { rules: kept, skipped };
}

/**
 * Makes `text` safe as a comment value: every character outside printable ASCII (newlines above
 * all: iptables-restore reads one command per line, so a newline would start a command of the
 * comment's choosing) becomes `?`, and the result is cut to `MAX_COMMENT_LENGTH`. Since only
 * single-byte characters remain, the cut never splits a character.
 */
export function sanitizeComment(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_COMMENT_LENGTH);
}

/**
 * Quotes a comment the way `iptables-save` prints it (`xtables_save_string`): bare when it
 * holds only `[A-Za-z0-9_-]`, otherwise in double quotes with `"`, `\` and `'` escaped by a
 * backslash, which iptables-restore's argument splitter undoes. The value cannot end the quotes
 * early, and the output equals what iptables-save shows for the same rule.
 */
export function quoteComment(text: string): string {
  const safe = sanitizeComment(text);
  if (/^[A-Za-z0-9_-]+$/.test(safe)) return safe;
  return `"${safe.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/**
 * One `-A KUBE-LC-SERVICES ...` line, matches in the order iptables-save prints them. The rule
 * must have passed `selectRules` (this function does not validate).
 */
export function renderServiceRule(rule: RedirectRule): string {
  return (
    `-A ${SERVICES_CHAIN} -d ${rule.clusterIP}/32 -p tcp -m comment --comment ` +
    `${quoteComment(rule.servicePort)} -m tcp --dport ${rule.port} ` +
    `-j REDIRECT --to-ports ${rule.proxyPort}`
  );
}

/**
 * The body of chain `KUBE-LC-SERVICES`: one REDIRECT line per renderable Service port, in
 * `compareRules` order. Rules `selectRules` skips (IPv6 ClusterIPs among them: IPv4 only for
 * now) are silently left out here; call `selectRules` to learn which, and log them.
 * A new array on every call; the input is not modified.
 */
export function renderServiceRules(rules: readonly RedirectRule[]): string[] {
  return selectRules(rules).rules.map(renderServiceRule);
}
