import { describe, expect, it } from 'vitest';
import {
  MAX_COMMENT_LENGTH,
  isIPv4,
  quoteComment,
  renderServiceRules,
  selectRules,
  type RedirectRule,
} from '../../src/iptables/render.js';

const rule = (
  servicePort: string,
  clusterIP: string,
  port: number,
  proxyPort: number,
): RedirectRule => ({ servicePort, clusterIP, port, proxyPort });

describe('renderServiceRules', () => {
  it.each<[string, RedirectRule[], string[]]>([
    ['empty rule set', [], []],
    [
      'one Service port',
      [rule('default/web:http', '10.96.0.10', 80, 40001)],
      [
        '-A KUBE-LC-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j REDIRECT --to-ports 40001',
      ],
    ],
    [
      'sorted by ClusterIP numerically, then port, whatever the input order',
      [
        rule('b/b:grpc', '10.96.10.2', 9090, 40003),
        rule('a/a:http', '10.96.9.200', 80, 40002),
        rule('b/b:http', '10.96.10.2', 80, 40004),
      ],
      [
        '-A KUBE-LC-SERVICES -d 10.96.9.200/32 -p tcp -m comment --comment "a/a:http" -m tcp --dport 80 -j REDIRECT --to-ports 40002',
        '-A KUBE-LC-SERVICES -d 10.96.10.2/32 -p tcp -m comment --comment "b/b:http" -m tcp --dport 80 -j REDIRECT --to-ports 40004',
        '-A KUBE-LC-SERVICES -d 10.96.10.2/32 -p tcp -m comment --comment "b/b:grpc" -m tcp --dport 9090 -j REDIRECT --to-ports 40003',
      ],
    ],
    [
      'IPv6 and headless ClusterIPs left out',
      [
        rule('default/v6:http', 'fd00:10:96::a', 80, 40001),
        rule('default/headless:http', 'None', 80, 40002),
        rule('default/v4:http', '10.96.0.1', 443, 40003),
      ],
      [
        '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/v4:http" -m tcp --dport 443 -j REDIRECT --to-ports 40003',
      ],
    ],
    [
      'a comment cannot break out of its quotes or start a new command',
      [rule('evil/x" -j ACCEPT\n-A OUTPUT -j DROP \\', '10.96.0.1', 80, 40001)],
      [
        '-A KUBE-LC-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "evil/x\\" -j ACCEPT?-A OUTPUT -j DROP \\\\" -m tcp --dport 80 -j REDIRECT --to-ports 40001',
      ],
    ],
  ])('%s', (_name, rules, want) => {
    expect(renderServiceRules(rules)).toEqual(want);
  });

  it('renders the same text for any input order', () => {
    const rules = [
      rule('a/a:p', '10.96.0.3', 80, 1),
      rule('a/b:p', '10.96.0.1', 80, 2),
      rule('a/c:p', '10.96.0.2', 81, 3),
      rule('a/d:p', '10.96.0.2', 80, 4),
    ];
    const want = renderServiceRules(rules);
    expect(renderServiceRules([...rules].reverse())).toEqual(want);
    expect(renderServiceRules([rules[2]!, rules[0]!, rules[3]!, rules[1]!])).toEqual(want);
  });
});

describe('selectRules', () => {
  it.each<[string, RedirectRule, string]>([
    ['IPv6', rule('a/a:p', '2001:db8::1', 80, 1), 'ipv6'],
    ['headless', rule('a/a:p', 'None', 80, 1), 'invalid-address'],
    ['leading zero (octal to inet_aton)', rule('a/a:p', '010.96.0.1', 80, 1), 'invalid-address'],
    ['octet out of range', rule('a/a:p', '10.96.0.256', 80, 1), 'invalid-address'],
    ['port 0', rule('a/a:p', '10.96.0.1', 0, 1), 'invalid-port'],
    ['port too big', rule('a/a:p', '10.96.0.1', 65536, 1), 'invalid-port'],
    ['proxy port not an integer', rule('a/a:p', '10.96.0.1', 80, 1.5), 'invalid-port'],
  ])('skips %s', (_name, r, reason) => {
    expect(selectRules([r])).toEqual({ rules: [], skipped: [{ rule: r, reason }] });
  });

  it('keeps the first of two rules for the same ClusterIP:port, deterministically', () => {
    const a = rule('ns/a:p', '10.96.0.1', 80, 1);
    const b = rule('ns/b:p', '10.96.0.1', 80, 2);
    expect(selectRules([b, a])).toEqual({
      rules: [a],
      skipped: [{ rule: b, reason: 'duplicate' }],
    });
    expect(selectRules([a, b])).toEqual({
      rules: [a],
      skipped: [{ rule: b, reason: 'duplicate' }],
    });
  });
});

describe('quoteComment', () => {
  it.each([
    ['plain', 'plain'],
    ['with-dash_and_9', 'with-dash_and_9'],
    ['ns/name:port', '"ns/name:port"'],
    ['two words', '"two words"'],
    ['', '""'],
    [`q"b\\s'a`, `"q\\"b\\\\s\\'a"`],
    ['tab\there', '"tab?here"'],
    ['héllo', '"h?llo"'],
  ])('%j -> %s (as iptables-save prints it)', (input, want) => {
    expect(quoteComment(input)).toBe(want);
  });

  it(`cuts comments to ${MAX_COMMENT_LENGTH} characters`, () => {
    expect(quoteComment('a'.repeat(300))).toBe('a'.repeat(MAX_COMMENT_LENGTH));
    expect(quoteComment('/'.repeat(300))).toBe(`"${'/'.repeat(MAX_COMMENT_LENGTH)}"`);
  });
});

describe('isIPv4', () => {
  it.each([
    ['10.96.0.1', true],
    ['255.255.255.255', true],
    ['0.0.0.0', true],
    ['1.2.3', false],
    ['1.2.3.4.5', false],
    ['01.2.3.4', false],
    ['::1', false],
    [' 10.0.0.1', false],
  ])('%s -> %s', (address, want) => {
    expect(isIPv4(address)).toBe(want);
  });
});
