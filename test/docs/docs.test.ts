import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SLOW_START_MIN_WEIGHT } from '../../src/balancer/least-conn.js';
import { REBALANCE_MIN_EXCESS } from '../../src/drain/rebalance.js';
import { DEFAULT_RETRY_INITIAL_MS, DEFAULT_RETRY_MAX_MS } from '../../src/lib/coalescing-runner.js';
import { createMetrics, type MetricsView } from '../../src/metrics/registry.js';
import {
  DEFAULT_BACKOFF,
  DEFAULT_RATE_LIMIT,
  UNREACHABLE_MAX_MS,
} from '../../src/source/k8s/backoff.js';
import {
  checkRecording,
  renderConvergenceSvg,
  type Recording,
} from '../../scripts/plot-convergence.js';
import {
  checkWellFormedXml,
  cliHelp,
  flagTables,
  headingAnchors,
  isKnownSeries,
  localLinks,
  metricNamesIn,
  metricSections,
  metricTableRows,
  parseHelpOptions,
} from './doc-checks.js';

// Keeps docs/ in step with the code: metric names, types and labels; flags and defaults; the
// Grafana dashboard's queries; the SVGs. Each check also runs on a copy broken on purpose, so
// that none can pass vacuously.

const read = (path: string): string => readFileSync(path, 'utf8');
const METRICS_MD = read('docs/metrics.md');
const OPERATIONS_MD = read('docs/operations.md');
const DASHBOARD = read('docs/grafana-dashboard.json');

/** The real registry, built on a view with nothing in it. */
function registry(): { types: Map<string, string>; labels: Map<string, string[]> } {
  const view: MetricsView = {
    servicePorts: () => [],
    ready: false,
    tableApplies: 0,
    rejectedUpdates: () => [],
    listenFailures: () => [],
  };
  const { registry: reg } = createMetrics(view);
  const types = new Map<string, string>();
  const labels = new Map<string, string[]>();
  for (const m of reg.getMetricsAsArray()) {
    const metric = m as unknown as { name: string; type: string; labelNames?: string[] };
    types.set(metric.name, String(metric.type));
    labels.set(metric.name, [...(metric.labelNames ?? [])].sort());
  }
  reg.clear();
  return { types, labels };
}
const REGISTRY = registry();
/** Metrics the daemon defines itself (not prom-client's process and Node.js defaults). */
const OWN = [...REGISTRY.types.keys()].filter((n) => !/^kube_lc_proxy_(process|nodejs)_/.test(n));

/** Problems of docs/metrics.md against the registry; [] when in step. */
function metricsDocProblems(markdown: string): string[] {
  const problems: string[] = [];
  const sections = new Map(metricSections(markdown).map((s) => [s.name, s]));
  const rows = metricTableRows(markdown);
  for (const [name, type] of REGISTRY.types) {
    const section = sections.get(name);
    const row = rows.get(name);
    if (section === undefined && row === undefined) {
      problems.push(`${name}: not documented`);
      continue;
    }
    if (OWN.includes(name) && section === undefined) problems.push(`${name}: no ### section`);
    if (section !== undefined) {
      if (section.type !== type) problems.push(`${name}: type ${section.type}, registry ${type}`);
      const want = REGISTRY.labels.get(name) ?? [];
      const got = [...(section.labels ?? ['(no Labels field)'])].sort();
      if (got.join(',') !== want.join(','))
        problems.push(`${name}: labels ${got.join(',')}, registry ${want.join(',')}`);
    }
    if (row !== undefined && row !== type)
      problems.push(`${name}: table type ${row}, registry ${type}`);
  }
  for (const name of metricNamesIn(markdown)) {
    if (!isKnownSeries(name, REGISTRY.types)) problems.push(`${name}: not in the registry`);
  }
  return problems;
}

describe('docs/metrics.md', () => {
  it('the registry has the metrics this test expects to find', () => {
    expect(OWN.length).toBeGreaterThanOrEqual(25);
    expect(REGISTRY.types.get('kube_lc_proxy_connection_skew_ratio')).toBe('gauge');
    expect(REGISTRY.types.get('kube_lc_proxy_drain_duration_seconds')).toBe('histogram');
  });

  it('documents every registered metric with its type and labels, and nothing else', () => {
    expect(metricsDocProblems(METRICS_MD)).toEqual([]);
  });

  it.each([
    [
      'a metric left out',
      (md: string) => md.replace(/^### kube_lc_proxy_open_streams\n[\s\S]*?(?=^### )/m, ''),
    ],
    [
      'a wrong type',
      (md: string) =>
        md.replace('**Type:** histogram (buckets 0.01 s to 60 s)', '**Type:** gauge ('),
    ],
    [
      'a missing label',
      (md: string) =>
        md.replace(
          '- **Type:** gauge. **Labels:** `service_port`, `endpoint`.',
          '- **Type:** gauge. **Labels:** `service_port`.',
        ),
    ],
    ['a name the registry does not have', (md: string) => `${md}\nkube_lc_proxy_made_up_total\n`],
    [
      'a process metric left out',
      (md: string) => md.replace(/^\| `kube_lc_proxy_process_max_fds`.*$/m, ''),
    ],
  ])('finds %s', (_name, brk) => {
    const broken = brk(METRICS_MD);
    expect(broken).not.toBe(METRICS_MD);
    expect(metricsDocProblems(broken)).not.toEqual([]);
  });

  it('gives the alert examples the task asks for', () => {
    for (const alert of [
      'kube_lc_proxy_connection_skew_ratio > 1.5',
      'kube_lc_proxy_drains_ended_total{outcome="forced"}',
      'kube_lc_proxy_clients_turned_away_total',
      'kube_lc_proxy_iptables_sync_failures_total',
      'time() - kube_lc_proxy_k8s_last_sync_timestamp_seconds',
      'kube_lc_proxy_ready == 0',
    ])
      expect(METRICS_MD).toContain(alert);
  });
});

/** Problems of the flag tables of `markdown` against `--help` of every command. */
function flagProblems(markdown: string): string[] {
  const problems: string[] = [];
  const tables = flagTables(markdown);
  for (const command of ['run', 'status', 'cleanup', 'demo']) {
    const options = parseHelpOptions(HELP.get(command) as string).filter(
      (o) => o.flag !== 'help' && o.flag !== 'version',
    );
    const rows = tables.get(command) ?? [];
    if (!new RegExp(`^### ${command}$`, 'm').test(markdown))
      problems.push(`no ### ${command} section`);
    for (const o of options) {
      const row = rows.find((r) => r.flag === o.flag);
      if (row === undefined) {
        problems.push(`${command} --${o.flag}: not in the table`);
        continue;
      }
      const want = o.defaultValue ?? '(none)';
      if (row.defaultValue !== want)
        problems.push(`${command} --${o.flag}: default ${row.defaultValue}, --help ${want}`);
    }
    for (const r of rows) {
      if (!options.some((o) => o.flag === r.flag))
        problems.push(`${command} --${r.flag}: documented but not a flag`);
    }
  }
  return problems;
}
const HELP = new Map(['run', 'status', 'cleanup', 'demo'].map((c) => [c, cliHelp(c)]));

describe('docs/operations.md', () => {
  it('reads the flags from --help', () => {
    const run = parseHelpOptions(HELP.get('run') as string);
    expect(run.length).toBeGreaterThan(15);
    expect(run.find((o) => o.flag === 'drain-grace')?.defaultValue).toBe('30s');
    expect(run.find((o) => o.flag === 'intercept')?.defaultValue).toBe(
      'iptables with --source k8s, none with file:',
    );
  });

  it('lists every flag of every command with the default --help prints', () => {
    expect(flagProblems(OPERATIONS_MD)).toEqual([]);
  });

  it.each([
    ['a flag left out', (md: string) => md.replace(/^\| `--drain-rate` .*$/m, '')],
    [
      'a wrong default',
      (md: string) => md.replace(/^(\| `--max-connection-age`\s*\|\s*)`10m`/m, '$1`5m`'),
    ],
    [
      'a flag that does not exist',
      (md: string) => md.replace(/^(\| `--)drain-grace(`)/m, '$1drain-patience$2'),
    ],
  ])('finds %s', (_name, brk) => {
    const broken = brk(OPERATIONS_MD);
    expect(broken).not.toBe(OPERATIONS_MD);
    expect(flagProblems(broken)).not.toEqual([]);
  });

  // Numbers the prose states; if one of these changes, change docs/operations.md and
  // docs/metrics.md with it.
  it.each([
    ['REBALANCE_MIN_EXCESS ("at least 2 connections above its target")', REBALANCE_MIN_EXCESS, 2],
    ['SLOW_START_MIN_WEIGHT ("from 10% to 100%")', SLOW_START_MIN_WEIGHT, 0.1],
    ['API back-off start ("500 ms doubling to 30 s")', DEFAULT_BACKOFF.initialMs, 500],
    ['API back-off cap', DEFAULT_BACKOFF.maxMs, 30_000],
    ['API back-off cap while unreachable ("at most 3 s")', UNREACHABLE_MAX_MS, 3_000],
    ['API request burst ("a burst of 3")', DEFAULT_RATE_LIMIT.burst, 3],
    ['API request rate ("2 per second")', DEFAULT_RATE_LIMIT.perSecond, 2],
    ['iptables retry start ("after 1 s")', DEFAULT_RETRY_INITIAL_MS, 1_000],
    ['iptables retry cap ("up to 30 s")', DEFAULT_RETRY_MAX_MS, 30_000],
  ])('%s', (_what, actual, documented) => {
    expect(actual).toBe(documented);
  });
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
}

/** Problems of a Grafana dashboard JSON text; [] when importable and in step with the registry. */
function dashboardProblems(text: string): string[] {
  const problems: string[] = [];
  let d: {
    __inputs?: { name: string; type: string; pluginId: string }[];
    schemaVersion?: number;
    templating?: { list: { name: string }[] };
    panels?: Panel[];
  };
  try {
    d = JSON.parse(text) as typeof d;
  } catch (err) {
    return [`not JSON: ${String(err)}`];
  }
  if (!d.__inputs?.some((i) => i.name === 'DS_PROMETHEUS' && i.pluginId === 'prometheus'))
    problems.push('no DS_PROMETHEUS datasource input');
  if (typeof d.schemaVersion !== 'number' || d.schemaVersion < 36)
    problems.push(`schemaVersion ${d.schemaVersion}`);
  for (const v of ['service_port', 'instance'])
    if (!d.templating?.list.some((t) => t.name === v)) problems.push(`no $${v} variable`);
  const panels = d.panels ?? [];
  const ids = new Set<number>();
  const used = new Set<string>();
  for (const p of panels) {
    if (ids.has(p.id)) problems.push(`panel id ${p.id} twice`);
    ids.add(p.id);
    if (p.gridPos.x + p.gridPos.w > 24) problems.push(`${p.title}: wider than the grid`);
    for (const q of panels) {
      if (q === p || q.id < p.id) continue;
      const a = p.gridPos;
      const b = q.gridPos;
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
        problems.push(`${p.title} overlaps ${q.title}`);
    }
    if (p.type === 'row') continue;
    if (p.datasource?.uid !== '${DS_PROMETHEUS}') problems.push(`${p.title}: datasource`);
    if ((p.targets ?? []).length === 0) problems.push(`${p.title}: no query`);
    for (const t of p.targets ?? []) {
      if (t.datasource !== undefined && t.datasource.uid !== '${DS_PROMETHEUS}')
        problems.push(`${p.title}: target datasource`);
      const names = metricNamesIn(t.expr);
      if (names.length === 0) problems.push(`${p.title}: a query with no kube_lc_proxy_ metric`);
      for (const n of names) {
        used.add(n);
        if (!isKnownSeries(n, REGISTRY.types))
          problems.push(`${p.title}: ${n} is not in the registry`);
      }
      let depth = 0;
      for (const ch of t.expr) {
        depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
        if (depth < 0) break;
      }
      if (depth !== 0) problems.push(`${p.title}: unbalanced parentheses in ${t.expr}`);
    }
  }
  for (const n of [
    'kube_lc_proxy_connection_skew_ratio',
    'kube_lc_proxy_active_connections',
    'kube_lc_proxy_drains_started_total',
    'kube_lc_proxy_drains_ended_total',
    'kube_lc_proxy_drain_duration_seconds_bucket',
    'kube_lc_proxy_open_streams',
    'kube_lc_proxy_connect_failures_total',
    'kube_lc_proxy_iptables_sync_duration_seconds_bucket',
    'kube_lc_proxy_iptables_sync_failures_total',
    'kube_lc_proxy_k8s_watch_restarts_total',
    'kube_lc_proxy_k8s_last_sync_timestamp_seconds',
  ])
    if (!used.has(n)) problems.push(`no panel shows ${n}`);
  return problems;
}

describe('docs/grafana-dashboard.json', () => {
  it('is an importable dashboard whose queries use only registered metrics', () => {
    expect(dashboardProblems(DASHBOARD)).toEqual([]);
  });

  it.each([
    ['not JSON', (t: string) => t.replace('{', '{,')],
    [
      'an unknown metric',
      (t: string) => t.replace('kube_lc_proxy_open_streams{', 'kube_lc_proxy_open_stream{'),
    ],
    [
      'a histogram suffix on a counter',
      (t: string) =>
        t.replace(
          'kube_lc_proxy_drains_started_total{',
          'kube_lc_proxy_drains_started_total_bucket{',
        ),
    ],
    ['no datasource input', (t: string) => t.replace('"DS_PROMETHEUS"', '"DS_OTHER"')],
    [
      'no service_port variable',
      (t: string) => t.replace('"name": "service_port"', '"name": "svc"'),
    ],
    [
      'a panel left out',
      (t: string) =>
        t.replaceAll('kube_lc_proxy_k8s_watch_restarts_total', 'kube_lc_proxy_k8s_relists_total'),
    ],
  ])('finds %s', (_name, brk) => {
    const broken = brk(DASHBOARD);
    expect(broken).not.toBe(DASHBOARD);
    expect(dashboardProblems(broken)).not.toEqual([]);
  });
});

describe('SVGs', () => {
  it.each(['docs/architecture.svg', 'docs/convergence.svg'])(
    '%s is well-formed SVG with an opaque white background',
    (path) => {
      const root = checkWellFormedXml(read(path));
      expect(root.name).toBe('svg');
      expect(root.attributes.get('xmlns')).toBe('http://www.w3.org/2000/svg');
      expect(root.attributes.get('viewBox')).toMatch(/^0 0 \d+ \d+$/);
      // Readable on dark pages: the first drawn element is a white rectangle over everything.
      const [, , w, h] = (root.attributes.get('viewBox') as string).split(' ');
      expect(read(path)).toMatch(
        new RegExp(`<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"\\s*/>`),
      );
    },
  );

  it.each([
    ['an unclosed element', '<svg xmlns="x"><g></svg>'],
    ['crossed elements', '<svg><g><text></g></text></svg>'],
    ['an unquoted attribute', '<svg width=10></svg>'],
    ['a duplicate attribute', '<svg a="1" a="2"></svg>'],
    ['a bare ampersand in text', '<svg><text>a & b</text></svg>'],
    ['a bare ampersand in an attribute', '<svg><a href="?a=1&b=2"/></svg>'],
    ['a less-than in an attribute', '<svg><a title="a<b"/></svg>'],
    ['two root elements', '<svg></svg><svg></svg>'],
    ['text after the root', '<svg></svg>x'],
    ['"--" in a comment', '<svg><!-- a -- b --></svg>'],
    ['nothing', ''],
  ])('the XML check rejects %s', (_name, text) => {
    expect(() => checkWellFormedXml(text)).toThrow(/not well-formed XML/);
  });

  it('the XML check accepts what SVG needs', () => {
    const root = checkWellFormedXml(
      '<?xml version="1.0"?>\n<!-- c -->\n<svg xmlns="http://www.w3.org/2000/svg"><g a=\'1\'><text>a &amp; b &#8805; &#x2264;</text><path d="M0,0"/></g><style><![CDATA[ a < b ]]></style></svg>\n',
    );
    expect(root.elements).toEqual(['svg', 'g', 'text', 'path', 'style']);
  });
});

describe('scripts/plot-convergence.ts', () => {
  const recording = (mode: 'drain' | 'no-drain'): Recording => ({
    mode,
    clients: 4,
    durationSeconds: 10,
    totalRpcs: 400,
    failedRpcs: 0,
    convergeSeconds: mode === 'drain' ? 1 : null,
    finalSkew: mode === 'drain' ? 1 : 2,
    drainsByReason: mode === 'drain' ? { rebalance: 2 } : {},
    connectionsAtEnd: { b1: 2, b2: 2 },
    steps: [
      { kind: 'start', at: 0, label: '1 backend' },
      { kind: 'scale-out', at: 2, label: 'scale out to 2 backends & more' },
      { kind: 'end', at: 10, label: 'end' },
    ],
    samples: Array.from({ length: 10 }, (_, t) => {
      const connections: Record<string, number> =
        t < 2 ? { b1: 4 } : mode === 'drain' ? { b1: 2, b2: 2 } : { b1: 4, b2: 0 };
      return { t: t + 1, connections };
    }),
  });

  it('draws both runs, every backend and the labelled steps as well-formed SVG', () => {
    const svg = renderConvergenceSvg(recording('drain'), recording('no-drain'));
    const root = checkWellFormedXml(svg);
    expect(root.name).toBe('svg');
    // Two panels, one line per backend in each.
    expect(root.elements.filter((e) => e === 'polyline')).toHaveLength(4);
    expect(svg).toContain('2 s: scale out to 2 backends &amp; more');
    expect(svg).not.toContain('s: end<');
    expect(svg).toContain('final skew 2.00');
    expect(svg).toContain('skew ≤ 1.1 within 1 s of the scale-out');
  });

  it('rejects files that are not demo recordings', () => {
    expect(() => checkRecording({ mode: 'drain', samples: [] }, 'x.json')).toThrow(/no samples/);
    expect(() => checkRecording([], 'x.json')).toThrow(/not a kube-lc-proxy demo recording/);
    expect(checkRecording(recording('no-drain'), 'x.json').mode).toBe('no-drain');
  });
});

/** Broken local links (a missing file or heading) of the markdown file at `path`. */
function linkProblems(path: string, markdown: string): string[] {
  const problems: string[] = [];
  for (const { file, anchor } of localLinks(markdown)) {
    const target = file === '' ? path : join(dirname(path), file);
    if (!existsSync(target)) {
      problems.push(`${file}: no such file`);
      continue;
    }
    if (anchor !== undefined && !headingAnchors(read(target)).has(anchor))
      problems.push(`${file}#${anchor}: no such heading`);
  }
  return problems;
}

describe('links between the docs', () => {
  it.each(['docs/metrics.md', 'docs/operations.md'])(
    '%s links only to files and headings that exist',
    (path) => {
      expect(linkProblems(path, read(path))).toEqual([]);
    },
  );

  it('finds a link to a heading that does not exist', () => {
    expect(
      linkProblems('docs/operations.md', '[x](deploy.md#no-such-heading) [y](#nope)'),
    ).toHaveLength(2);
    expect(linkProblems('docs/operations.md', '[x](deploy.md#verify) [y](#signals)')).toEqual([]);
  });
});
