/**
 * Reading back the REDIRECT rules a previous proxy left in `KUBE-LC-SERVICES` (pure), so that a
 * starting proxy listens on the same ports and the rules never change across a restart or an
 * upgrade. The rules are the only record of the ports: nothing else is kept on the node.
 */
import { parseNatSave } from './plan.js';
import { SERVICES_CHAIN, isIPv4, type RedirectRule } from './render.js';

/** The value following `flag` in `args`, or undefined. */
function valueOf(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function port(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * The REDIRECT rules of `KUBE-LC-SERVICES` in an `iptables-save -t nat` text, as the renderer
 * wrote them: `servicePort` is the rule's comment. A rule that does not have that shape (edited
 * by hand, a port range, no comment) is left out: it is rewritten at the first sync anyway. When
 * two rules name the same Service port, the first wins. Never throws.
 */
export function adoptRedirects(natSave: string): RedirectRule[] {
  const out: RedirectRule[] = [];
  const seen = new Set<string>();
  for (const rule of parseNatSave(natSave).rules) {
    if (rule.chain !== SERVICES_CHAIN) continue;
    const a = rule.args;
    if (valueOf(a, '-j') !== 'REDIRECT' || valueOf(a, '-p') !== 'tcp') continue;
    const servicePort = valueOf(a, '--comment');
    const dest = valueOf(a, '-d');
    const clusterIP = dest?.endsWith('/32') ? dest.slice(0, -3) : dest;
    const servicePortNumber = port(valueOf(a, '--dport'));
    const proxyPort = port(valueOf(a, '--to-ports'));
    if (
      servicePort === undefined ||
      clusterIP === undefined ||
      !isIPv4(clusterIP) ||
      servicePortNumber === undefined ||
      proxyPort === undefined ||
      seen.has(servicePort)
    ) {
      continue;
    }
    seen.add(servicePort);
    out.push({ servicePort, clusterIP, port: servicePortNumber, proxyPort });
  }
  return out;
}
