import { describe, expect, it } from 'vitest';
import { adoptRedirects } from '../../src/iptables/adopt.js';
import {
  FIREWALL_CHAIN,
  planFirewallCleanup,
  planFirewallSync,
  renderFirewallRules,
} from '../../src/iptables/firewall.js';
import { planSync } from '../../src/iptables/plan.js';

const FRESH_NAT = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;

const FRESH_FILTER = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`;

/** A save as iptables-save prints it after `restore` of `plan` on `before` (our rules only). */
function applied(before: string, plan: string): string {
  const table = before.split('\n')[0]!;
  const body = plan
    .split('\n')
    .filter((l) => l.startsWith('-A ') || (l.startsWith(':') && !before.includes(l)));
  const jumps = plan
    .split('\n')
    .filter((l) => l.startsWith('-I '))
    .map((l) => l.replace(/^-I (\S+) 1 /, '-A $1 '));
  const decls = body.filter((l) => l.startsWith(':'));
  const rules = body.filter((l) => l.startsWith('-A '));
  const lines = before.trimEnd().split('\n').slice(1, -1);
  return [table, ...lines, ...decls, ...jumps, ...rules, 'COMMIT', ''].join('\n');
}

describe('adoptRedirects', () => {
  it('reads back exactly what a sync wrote, comments with spaces and quotes included', () => {
    const rules = [
      { servicePort: 'default/echo:grpc', clusterIP: '10.96.0.10', port: 8080, proxyPort: 61234 },
      { servicePort: 'ns/odd "name":p', clusterIP: '10.96.0.11', port: 443, proxyPort: 40001 },
    ];
    const save = applied(FRESH_NAT, planSync(FRESH_NAT, rules));
    expect(adoptRedirects(save)).toEqual(rules);
  });

  it.each([
    [
      'no comment',
      '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 61000',
    ],
    [
      'a port range',
      '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment a/b -m tcp --dport 80 -j REDIRECT --to-ports 61000-61010',
    ],
    [
      'another target',
      '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment a/b -m tcp --dport 80 -j DNAT --to-destination 1.2.3.4:5',
    ],
    [
      'another chain',
      '-A PREROUTING -d 10.96.0.1/32 -p tcp -m comment --comment a/b -m tcp --dport 80 -j REDIRECT --to-ports 61000',
    ],
    [
      'an IPv6-looking address',
      '-A KUBE-LC-SERVICES -d fd00::1/128 -p tcp -m comment --comment a/b -m tcp --dport 80 -j REDIRECT --to-ports 61000',
    ],
  ])('skips a rule with %s', (_name, rule) => {
    const save = FRESH_NAT.replace('COMMIT', `:KUBE-LC-SERVICES - [0:0]\n${rule}\nCOMMIT`);
    expect(adoptRedirects(save)).toEqual([]);
  });

  it('keeps the first rule when two name the same Service port, and never throws on junk', () => {
    const save = FRESH_NAT.replace(
      'COMMIT',
      [
        ':KUBE-LC-SERVICES - [0:0]',
        '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment a/b -m tcp --dport 80 -j REDIRECT --to-ports 61000',
        '-A KUBE-LC-SERVICES -d 10.96.0.2/32 -p tcp -m comment --comment a/b -m tcp --dport 80 -j REDIRECT --to-ports 61001',
        'COMMIT',
      ].join('\n'),
    );
    expect(adoptRedirects(save)).toEqual([
      { servicePort: 'a/b', clusterIP: '10.96.0.1', port: 80, proxyPort: 61000 },
    ]);
    expect(adoptRedirects('garbage\n-A\n*nat\n-A KUBE-LC-SERVICES')).toEqual([]);
  });
});

describe('firewall chain', () => {
  it('renders the range, then each listener port outside it once, in order', () => {
    expect(
      renderFirewallRules({ first: 61000, last: 65535 }, [40002, 61500, 40001, 40002]),
    ).toEqual([
      `-A ${FIREWALL_CHAIN} -p tcp -m comment --comment "kube-lc-proxy port range" -m tcp --dport 61000:65535 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      `-A ${FIREWALL_CHAIN} -p tcp -m comment --comment "kube-lc-proxy listener" -m tcp --dport 40001 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      `-A ${FIREWALL_CHAIN} -p tcp -m comment --comment "kube-lc-proxy listener" -m tcp --dport 40002 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    ]);
    expect(renderFirewallRules({ first: 61000, last: 61000 }, [])[0]).toContain('--dport 61000 ');
  });

  it('jumps from the top of INPUT once, and leaves a canonical jump alone', () => {
    const first = planFirewallSync(FRESH_FILTER, { first: 61000, last: 65535 }, []);
    expect(first).toContain(
      '-I INPUT 1 -m comment --comment "kube-lc-proxy firewall" -j KUBE-LC-FIREWALL',
    );
    const after = applied(FRESH_FILTER, first);
    const second = planFirewallSync(after, { first: 61000, last: 65535 }, []);
    expect(second).not.toContain('INPUT');
    expect(second).toContain(`:${FIREWALL_CHAIN} - [0:0]`);
  });

  it('moves the jump back to the top when another rule was put before it', () => {
    const after = applied(FRESH_FILTER, planFirewallSync(FRESH_FILTER, { first: 1, last: 2 }, []));
    const pushed = after.replace(
      '-A INPUT -m comment',
      '-A INPUT -s 10.0.0.1/32 -j ACCEPT\n-A INPUT -m comment',
    );
    const plan = planFirewallSync(pushed, { first: 1, last: 2 }, []);
    expect(plan).toContain(
      '-D INPUT -m comment --comment "kube-lc-proxy firewall" -j KUBE-LC-FIREWALL',
    );
    expect(plan).toContain('-I INPUT 1 ');
  });

  it('cleanup removes the jump and the chain, with -X only when nothing else is in the table', () => {
    const after = applied(FRESH_FILTER, planFirewallSync(FRESH_FILTER, { first: 1, last: 2 }, []));
    expect(planFirewallCleanup(after)).toBe(
      '*filter\n-D INPUT -m comment --comment "kube-lc-proxy firewall" -j KUBE-LC-FIREWALL\n' +
        ':KUBE-LC-FIREWALL - [0:0]\n-X KUBE-LC-FIREWALL\n-X\nCOMMIT\n',
    );
    const foreign = after.replace('COMMIT', '-A FORWARD -j DROP\nCOMMIT');
    expect(planFirewallCleanup(foreign)).not.toContain('\n-X\n');
    expect(planFirewallCleanup(FRESH_FILTER)).toBeUndefined();
  });
});
