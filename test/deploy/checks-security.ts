import { allContainers, podSpec, proxyContainer, type Check } from './check.js';

/** The DaemonSet's pod: network namespace, capabilities, user, file systems, seccomp. */
export const securityChecks: Check[] = [
  {
    name: 'hostNetwork, with the node resolver (dnsPolicy Default)',
    check: (f) => [
      ...(podSpec(f).hostNetwork === true ? [] : ['hostNetwork is not true']),
      ...(podSpec(f).dnsPolicy === 'Default' ? [] : [`dnsPolicy is ${podSpec(f).dnsPolicy}`]),
    ],
    breaks: {
      'no hostNetwork': (f) => {
        podSpec(f).hostNetwork = false;
      },
      'cluster DNS': (f) => {
        podSpec(f).dnsPolicy = 'ClusterFirst';
      },
    },
  },
  {
    name: 'capabilities: drop ALL, add NET_ADMIN only',
    check: (f) =>
      allContainers(f).flatMap((c) => {
        const caps = c.securityContext?.capabilities;
        const problems: string[] = [];
        if (!(caps?.drop ?? []).includes('ALL')) problems.push(`${c.name} does not drop ALL`);
        if (JSON.stringify(caps?.add ?? []) !== JSON.stringify(['NET_ADMIN'])) {
          problems.push(`${c.name} adds ${JSON.stringify(caps?.add ?? [])}, not [NET_ADMIN]`);
        }
        return problems;
      }),
    breaks: {
      'NET_RAW too': (f) => {
        proxyContainer(f).securityContext?.capabilities?.add?.push('NET_RAW');
      },
      'nothing dropped': (f) => {
        const caps = proxyContainer(f).securityContext?.capabilities;
        if (caps) delete caps.drop;
      },
      'no NET_ADMIN': (f) => {
        const caps = proxyContainer(f).securityContext?.capabilities;
        if (caps) caps.add = [];
      },
    },
  },
  {
    name: 'not privileged, no privilege escalation, no host PID or IPC namespace',
    check: (f) => [
      ...allContainers(f).flatMap((c) => [
        ...(c.securityContext?.privileged === false ? [] : [`${c.name}: privileged is not false`]),
        ...(c.securityContext?.allowPrivilegeEscalation === false
          ? []
          : [`${c.name}: allowPrivilegeEscalation is not false`]),
      ]),
      ...(podSpec(f).hostPID || podSpec(f).hostIPC ? ['uses the host PID or IPC namespace'] : []),
    ],
    breaks: {
      privileged: (f) => {
        const sc = proxyContainer(f).securityContext;
        if (sc) sc.privileged = true;
      },
      'escalation left at its default': (f) => {
        const sc = proxyContainer(f).securityContext;
        if (sc) delete sc.allowPrivilegeEscalation;
      },
      hostPID: (f) => {
        podSpec(f).hostPID = true;
      },
    },
  },
  {
    name: 'read-only root file system',
    check: (f) =>
      allContainers(f)
        .filter((c) => c.securityContext?.readOnlyRootFilesystem !== true)
        .map((c) => `${c.name}: readOnlyRootFilesystem is not true`),
    breaks: {
      writable: (f) => {
        const sc = proxyContainer(f).securityContext;
        if (sc) sc.readOnlyRootFilesystem = false;
      },
    },
  },
  {
    // A non-root user loses NET_ADMIN at exec (no ambient capabilities in Kubernetes), so the
    // user is explicit and a change to it is deliberate. daemonset.yaml explains the choice.
    name: 'runs as UID 0, stated explicitly',
    check: (f) =>
      proxyContainer(f).securityContext?.runAsUser === 0 &&
      proxyContainer(f).securityContext?.runAsNonRoot !== true
        ? []
        : ['the proxy container does not state runAsUser 0'],
    breaks: {
      'a non-root user': (f) => {
        const sc = proxyContainer(f).securityContext;
        if (sc) sc.runAsUser = 65532;
      },
      'user left to the image': (f) => {
        const sc = proxyContainer(f).securityContext;
        if (sc) delete sc.runAsUser;
      },
    },
  },
  {
    name: "the host's /run/xtables.lock is mounted writable, and is the only host path",
    check: (f) => {
      const volumes = podSpec(f).volumes ?? [];
      const problems: string[] = [];
      const lock = volumes.find(
        (v) => v.hostPath?.path === '/run/xtables.lock' && v.hostPath.type === 'FileOrCreate',
      );
      if (lock === undefined) problems.push('no FileOrCreate hostPath volume /run/xtables.lock');
      const mount = proxyContainer(f).volumeMounts?.find((m) => m.name === lock?.name);
      if (mount?.mountPath !== '/run/xtables.lock' || mount.readOnly === true) {
        problems.push('the lock is not mounted writable at /run/xtables.lock');
      }
      for (const v of volumes) {
        if (v.hostPath && v !== lock) problems.push(`extra hostPath ${v.hostPath.path}`);
      }
      for (const c of allContainers(f)) {
        for (const m of c.volumeMounts ?? []) {
          if (!volumes.some((v) => v.name === m.name)) problems.push(`no volume ${m.name}`);
        }
      }
      return problems;
    },
    breaks: {
      'a private emptyDir lock': (f) => {
        podSpec(f).volumes = [{ name: 'xtables-lock', emptyDir: {} }];
      },
      'mounted read-only': (f) => {
        const [m] = proxyContainer(f).volumeMounts ?? [];
        if (m) m.readOnly = true;
      },
      'the host root too': (f) => {
        podSpec(f).volumes?.push({ name: 'host', hostPath: { path: '/' } });
      },
      'lock must pre-exist': (f) => {
        const [v] = podSpec(f).volumes ?? [];
        if (v?.hostPath) v.hostPath.type = 'File';
      },
    },
  },
  {
    name: 'seccomp profile RuntimeDefault',
    check: (f) =>
      allContainers(f)
        .filter(
          (c) =>
            (c.securityContext?.seccompProfile?.type ??
              podSpec(f).securityContext?.seccompProfile?.type) !== 'RuntimeDefault',
        )
        .map((c) => `${c.name}: seccomp is not RuntimeDefault`),
    breaks: {
      unconfined: (f) => {
        podSpec(f).securityContext = { seccompProfile: { type: 'Unconfined' } };
      },
    },
  },
];
