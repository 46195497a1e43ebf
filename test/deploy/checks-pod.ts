import { allContainers, daemonSet, podSpec, proxyContainer, type Check } from './check.js';
import type { Container, DeployFiles, Probe } from './load.js';
import { flagValue, parseDurationMs, parseQuantity } from './units.js';

/** The port of `--metrics-address=HOST:PORT` (split at the last colon, for IPv6). */
function metricsPort(f: DeployFiles): number {
  const address = flagValue(proxyContainer(f).args ?? [], 'metrics-address');
  const port = Number(address?.slice(address.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`bad --metrics-address ${address}`);
  return port;
}

/** A probe's port as a number, resolving a named container port. */
function probePort(c: Container, probe: Probe | undefined): number | undefined {
  const port = probe?.httpGet?.port;
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function probeProblems(
  c: Container,
  which: 'livenessProbe' | 'readinessProbe',
  path: string,
  port: number,
): string[] {
  const probe = c[which];
  const problems: string[] = [];
  if (probe?.httpGet?.path !== path) problems.push(`${which} path is not ${path}`);
  if (probePort(c, probe) !== port)
    problems.push(`${which} does not target the metrics port ${port}`);
  // The kubelet must probe the pod IP, where the server listens; a host here would point it
  // elsewhere (127.0.0.1 is not where the metrics server listens).
  if (probe?.httpGet?.host !== undefined) problems.push(`${which} sets host`);
  if ((probe?.httpGet?.scheme ?? 'HTTP') !== 'HTTP') problems.push(`${which} is not plain HTTP`);
  return problems;
}

function env(c: Container, name: string) {
  return c.env?.find((e) => e.name === name);
}

/** The DaemonSet's pod: probes, metrics, environment, updates, resources, scheduling. */
export const podChecks: Check[] = [
  {
    name: 'liveness probes /healthz and readiness probes /readyz on the metrics port',
    check: (f) => {
      const c = proxyContainer(f);
      const port = metricsPort(f);
      return [
        ...probeProblems(c, 'livenessProbe', '/healthz', port),
        ...probeProblems(c, 'readinessProbe', '/readyz', port),
      ];
    },
    breaks: {
      'liveness on /metrics': (f) => {
        const g = proxyContainer(f).livenessProbe?.httpGet;
        if (g) g.path = '/metrics';
      },
      'readiness on another port': (f) => {
        const g = proxyContainer(f).readinessProbe?.httpGet;
        if (g) g.port = 8080;
      },
      'liveness on localhost': (f) => {
        const g = proxyContainer(f).livenessProbe?.httpGet;
        if (g) g.host = '127.0.0.1';
      },
      'no readiness probe': (f) => {
        delete proxyContainer(f).readinessProbe;
      },
    },
  },
  {
    name: 'metrics listen on $(POD_IP), the node address the kubelet and Prometheus reach',
    check: (f) => {
      const c = proxyContainer(f);
      const args = c.args ?? [];
      const problems: string[] = [];
      if (!flagValue(args, 'metrics-address')?.startsWith('$(POD_IP):')) {
        problems.push('--metrics-address is not $(POD_IP):PORT');
      }
      if (env(c, 'POD_IP')?.valueFrom?.fieldRef?.fieldPath !== 'status.podIP') {
        problems.push('POD_IP does not come from status.podIP');
      }
      // The kubelet expands $(VAR) only for variables defined in env; others stay literal.
      for (const a of args) {
        for (const [, name] of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (name !== undefined && env(c, name) === undefined)
            problems.push(`$(${name}) undefined`);
        }
      }
      return problems;
    },
    breaks: {
      'loopback (the default)': (f) => {
        proxyContainer(f).args = ['run', '--metrics-address=127.0.0.1:9901'];
      },
      'every interface': (f) => {
        proxyContainer(f).args = ['run', '--metrics-address=0.0.0.0:9901'];
      },
      'POD_IP not defined': (f) => {
        const c = proxyContainer(f);
        c.env = (c.env ?? []).filter((e) => e.name !== 'POD_IP');
      },
    },
  },
  {
    name: 'NODE_NAME comes from the downward API (spec.nodeName)',
    check: (f) => {
      const e = env(proxyContainer(f), 'NODE_NAME');
      return e?.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName' && e.value === undefined
        ? []
        : ['NODE_NAME is not fieldRef spec.nodeName'];
    },
    breaks: {
      'the pod name': (f) => {
        const e = env(proxyContainer(f), 'NODE_NAME');
        if (e) e.valueFrom = { fieldRef: { fieldPath: 'metadata.name' } };
      },
      missing: (f) => {
        const c = proxyContainer(f);
        c.env = (c.env ?? []).filter((e) => e.name !== 'NODE_NAME');
      },
    },
  },
  {
    name: 'the Prometheus scrape port is annotated, and no container port is declared (it would be a hostPort)',
    check: (f) => {
      const port = metricsPort(f);
      const annotations = daemonSet(f).spec?.template?.metadata?.annotations ?? {};
      const problems: string[] = [];
      // Under hostNetwork every declared containerPort becomes a hostPort, and the scheduler
      // puts no second pod with the same hostPort on a node: the surge pod of an update would
      // never schedule and the rollout would hang (kubernetes/kubernetes#106417).
      for (const c of allContainers(f)) {
        if ((c.ports ?? []).length > 0) problems.push(`${c.name} declares ports`);
      }
      if (annotations['prometheus.io/scrape'] !== 'true') problems.push('prometheus.io/scrape');
      if (annotations['prometheus.io/port'] !== String(port)) problems.push('prometheus.io/port');
      return problems;
    },
    breaks: {
      'annotation on another port': (f) => {
        const meta = daemonSet(f).spec?.template?.metadata;
        if (meta) meta.annotations = { ...meta.annotations, 'prometheus.io/port': '9090' };
      },
      'the metrics port declared (a hostPort)': (f) => {
        proxyContainer(f).ports = [{ name: 'metrics', containerPort: 9901, protocol: 'TCP' }];
      },
    },
  },
  {
    name: 'RollingUpdate by handover: maxSurge 1, maxUnavailable 0',
    check: (f) => {
      const s = daemonSet(f).spec?.updateStrategy;
      const problems: string[] = [];
      if (s?.type !== 'RollingUpdate') problems.push(`update strategy is ${s?.type}`);
      const surge = s?.rollingUpdate?.maxSurge;
      if (surge !== 1) problems.push(`maxSurge is ${surge}`);
      const unavailable = s?.rollingUpdate?.maxUnavailable;
      if (unavailable !== 0) problems.push(`maxUnavailable is ${unavailable}`);
      return problems;
    },
    breaks: {
      'no surge (stop, then start)': (f) => {
        const r = daemonSet(f).spec?.updateStrategy?.rollingUpdate;
        if (r) {
          r.maxSurge = 0;
          r.maxUnavailable = 1;
        }
      },
      'surge and unavailable': (f) => {
        const r = daemonSet(f).spec?.updateStrategy?.rollingUpdate;
        if (r) r.maxUnavailable = 1;
      },
      OnDelete: (f) => {
        const s = daemonSet(f).spec?.updateStrategy;
        if (s) s.type = 'OnDelete';
      },
    },
  },
  {
    name: 'terminationGracePeriodSeconds outlasts --shutdown-grace',
    check: (f) => {
      const grace = flagValue(proxyContainer(f).args ?? [], 'shutdown-grace') ?? '30s';
      const graceMs = parseDurationMs(grace);
      const termination = podSpec(f).terminationGracePeriodSeconds ?? 30; // the API default
      if (graceMs === undefined) return [`--shutdown-grace ${grace} does not parse`];
      return termination * 1000 > graceMs
        ? []
        : [`terminationGracePeriodSeconds ${termination} <= --shutdown-grace ${grace}`];
    },
    breaks: {
      'equal to the grace': (f) => {
        podSpec(f).terminationGracePeriodSeconds = 30;
      },
      'left at the API default': (f) => {
        delete podSpec(f).terminationGracePeriodSeconds;
      },
      'a longer shutdown grace': (f) => {
        const c = proxyContainer(f);
        c.args = [
          ...(c.args ?? []).filter((a) => !a.startsWith('--shutdown-grace')),
          '--shutdown-grace=60s',
        ];
      },
    },
  },
  {
    name: 'CPU and memory requests and limits are set, requests within limits',
    check: (f) =>
      allContainers(f).flatMap((c) =>
        ['cpu', 'memory'].flatMap((r) => {
          const request = parseQuantity(c.resources?.requests?.[r]);
          const limit = parseQuantity(c.resources?.limits?.[r]);
          if (request === undefined || limit === undefined) return [`${c.name}: ${r} unset`];
          return request <= limit ? [] : [`${c.name}: ${r} request above limit`];
        }),
      ),
    breaks: {
      'no memory limit': (f) => {
        delete proxyContainer(f).resources?.limits?.memory;
      },
      'request above limit': (f) => {
        const requests = proxyContainer(f).resources?.requests;
        if (requests) requests.cpu = '4';
      },
    },
  },
  {
    name: 'priorityClassName system-node-critical',
    check: (f) =>
      podSpec(f).priorityClassName === 'system-node-critical'
        ? []
        : [`priorityClassName is ${podSpec(f).priorityClassName}`],
    breaks: {
      none: (f) => {
        delete podSpec(f).priorityClassName;
      },
    },
  },
  {
    name: 'tolerates every taint, so it runs on every node',
    check: (f) =>
      (podSpec(f).tolerations ?? []).some(
        (t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined,
      )
        ? []
        : ['no toleration with operator Exists and no key or effect'],
    breaks: {
      none: (f) => {
        podSpec(f).tolerations = [];
      },
      'control plane only': (f) => {
        podSpec(f).tolerations = [
          { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' },
        ];
      },
    },
  },
  {
    name: 'the selector matches the pod template labels',
    check: (f) => {
      const ds = daemonSet(f);
      const selector = Object.entries(ds.spec?.selector?.matchLabels ?? {});
      const labels = ds.spec?.template?.metadata?.labels ?? {};
      if (selector.length === 0) return ['empty selector'];
      return selector.filter(([k, v]) => labels[k] !== v).map(([k]) => `label ${k} differs`);
    },
    breaks: {
      'template relabelled': (f) => {
        const meta = daemonSet(f).spec?.template?.metadata;
        if (meta) meta.labels = { app: 'other' };
      },
    },
  },
];
