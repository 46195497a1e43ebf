import {
  daemonSet,
  namespace,
  objectsOfKind,
  only,
  podSpec,
  proxyContainer,
  type Check,
} from './check.js';
import type { ClusterRole, ClusterRoleBinding, KubeObject, ResourceQuota } from './load.js';

const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

/** What the proxy may do in the API, as `group/resource:verb`; the core group is "". */
const allowedAccess = [
  '/services:list',
  '/services:watch',
  'discovery.k8s.io/endpointslices:list',
  'discovery.k8s.io/endpointslices:watch',
  '/nodes:get',
];

function clusterRole(f: Parameters<Check['check']>[0]): ClusterRole {
  return only<ClusterRole>(f, 'ClusterRole');
}

/** The files of daemonset/, the kustomization, namespaces and RBAC. */
export const kitChecks: Check[] = [
  {
    name: 'every manifest document parses and has apiVersion, kind and metadata.name',
    check: (f) => [
      ...f.parseProblems,
      ...f.manifests
        .filter((m) => !m.object.apiVersion || !m.object.kind || !m.object.metadata?.name)
        .map((m) => `${m.file}: a document lacks apiVersion, kind or metadata.name`),
    ],
    breaks: {
      'a document without kind': (f) => {
        const [m] = f.manifests;
        if (m) delete m.object.kind;
      },
    },
  },
  {
    name: 'the kit has one Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding and DaemonSet',
    check: (f) =>
      ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet']
        .map((kind) => [kind, objectsOfKind(f, kind).length] as const)
        .filter(([, n]) => n !== 1)
        .map(([kind, n]) => `${n} objects of kind ${kind}, expected 1`),
    breaks: {
      'no ServiceAccount': (f) => {
        f.manifests = f.manifests.filter((m) => m.object.kind !== 'ServiceAccount');
      },
    },
  },
  {
    name: 'kustomization.yaml lists every manifest file of daemonset/',
    check: (f) =>
      f.manifestFiles
        .filter((file) => !(f.kustomization.resources ?? []).includes(file))
        .map((file) => `${file} is not in kustomization.yaml resources`),
    breaks: {
      'rbac.yaml left out': (f) => {
        f.kustomization.resources = (f.kustomization.resources ?? []).filter(
          (r) => r !== 'rbac.yaml',
        );
      },
    },
  },
  {
    name: 'every resource in kustomization.yaml is a file of daemonset/',
    check: (f) => [
      ...((f.kustomization.resources ?? []).length === 0 ? ['no resources listed'] : []),
      ...(f.kustomization.resources ?? [])
        .filter((r) => !f.manifestFiles.includes(r))
        .map((r) => `${r} is listed but is not a manifest in daemonset/`),
    ],
    breaks: {
      'a file that does not exist': (f) => {
        f.kustomization.resources = [...(f.kustomization.resources ?? []), 'missing.yaml'];
      },
    },
  },
  {
    name: 'the image is set once, through kustomization images:',
    check: (f) => {
      const image = proxyContainer(f).image ?? '';
      const entry = (f.kustomization.images ?? []).find((i) => i.name === image);
      const problems: string[] = [];
      if (/[:/@]/.test(image)) problems.push(`DaemonSet image ${image} carries a registry or tag`);
      if (entry === undefined) problems.push(`no kustomization images: entry named ${image}`);
      else if (!entry.newName || !(entry.newTag || entry.digest)) {
        problems.push(`images: entry ${image} lacks newName or newTag/digest`);
      }
      return problems;
    },
    breaks: {
      'a full reference in the DaemonSet': (f) => {
        proxyContainer(f).image = 'ghcr.io/example/kube-lc-proxy:latest';
      },
      'no images: entry': (f) => {
        f.kustomization.images = [];
      },
    },
  },
  {
    name: 'namespaced objects live in kube-lc-proxy, whose Pod Security level is privileged',
    check: (f) => {
      const problems = f.manifests
        .filter((m) => !clusterScoped.has(m.object.kind ?? ''))
        .filter((m) => m.object.metadata?.namespace !== namespace)
        .map((m) => `${m.object.kind} ${m.object.metadata?.name} is not in ${namespace}`);
      const ns = objectsOfKind<KubeObject>(f, 'Namespace').find(
        (n) => n.metadata?.name === namespace,
      );
      if (ns === undefined) problems.push(`no Namespace ${namespace}`);
      // hostNetwork and NET_ADMIN are refused by the baseline and restricted levels.
      else if (ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'] !== 'privileged') {
        problems.push('the Namespace does not enforce the privileged Pod Security level');
      }
      return problems;
    },
    breaks: {
      'ServiceAccount in default': (f) => {
        const sa = only<KubeObject>(f, 'ServiceAccount');
        sa.metadata = { ...sa.metadata, namespace: 'default' };
      },
      'Namespace at baseline': (f) => {
        const ns = only<KubeObject>(f, 'Namespace');
        ns.metadata = {
          ...ns.metadata,
          labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
        };
      },
    },
  },
  {
    name: 'a ResourceQuota admits system-node-critical pods in the namespace',
    check: (f) => {
      const ok = objectsOfKind<ResourceQuota>(f, 'ResourceQuota').some(
        (q) =>
          q.metadata?.namespace === namespace &&
          q.spec?.scopeSelector?.matchExpressions?.some(
            (e) =>
              e.scopeName === 'PriorityClass' &&
              e.operator === 'In' &&
              (e.values ?? []).includes(podSpec(f).priorityClassName ?? ''),
          ),
      );
      return ok ? [] : ['no ResourceQuota scoped to the DaemonSet priority class'];
    },
    breaks: {
      'quota for another class': (f) => {
        const q = only<ResourceQuota>(f, 'ResourceQuota');
        q.spec = { hard: { pods: 1 }, scopeSelector: { matchExpressions: [] } };
      },
    },
  },
  {
    name: 'RBAC: list+watch services and endpointslices, get nodes, nothing more',
    check: (f) => {
      const problems: string[] = [];
      for (const kind of ['Role', 'RoleBinding']) {
        if (objectsOfKind(f, kind).length > 0) problems.push(`unexpected ${kind}`);
      }
      const granted = new Set<string>();
      for (const rule of clusterRole(f).rules ?? []) {
        if (rule.resourceNames || rule.nonResourceURLs) {
          problems.push('a rule with resourceNames or nonResourceURLs');
        }
        for (const g of rule.apiGroups ?? []) {
          for (const r of rule.resources ?? []) {
            for (const v of rule.verbs ?? []) granted.add(`${g}/${r}:${v}`);
          }
        }
      }
      for (const a of granted) if (!allowedAccess.includes(a)) problems.push(`grants ${a}`);
      for (const a of allowedAccess) if (!granted.has(a)) problems.push(`does not grant ${a}`);
      return problems;
    },
    breaks: {
      'get on services': (f) => {
        clusterRole(f).rules?.[0]?.verbs?.push('get');
      },
      'read secrets': (f) => {
        clusterRole(f).rules?.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] });
      },
      'no watch on endpointslices': (f) => {
        const rule = clusterRole(f).rules?.find((r) => r.resources?.includes('endpointslices'));
        if (rule) rule.verbs = ['list'];
      },
      'a wildcard verb': (f) => {
        const [rule] = clusterRole(f).rules ?? [];
        if (rule) rule.verbs = ['*'];
      },
      'an extra Role': (f) => {
        f.manifests.push({ file: 'x.yaml', object: { kind: 'Role', metadata: { name: 'x' } } });
      },
    },
  },
  {
    name: "the ClusterRoleBinding binds the ClusterRole to the DaemonSet's ServiceAccount",
    check: (f) => {
      const binding = only<ClusterRoleBinding>(f, 'ClusterRoleBinding');
      const sa = only<KubeObject>(f, 'ServiceAccount');
      const problems: string[] = [];
      if (
        binding.roleRef?.kind !== 'ClusterRole' ||
        binding.roleRef.name !== clusterRole(f).metadata?.name
      ) {
        problems.push('roleRef is not the ClusterRole of the kit');
      }
      const subjects = binding.subjects ?? [];
      const [subject] = subjects;
      if (
        subjects.length !== 1 ||
        subject?.kind !== 'ServiceAccount' ||
        subject.name !== sa.metadata?.name ||
        subject.namespace !== sa.metadata?.namespace
      ) {
        problems.push('subjects are not exactly the ServiceAccount of the kit');
      }
      if (podSpec(f).serviceAccountName !== sa.metadata?.name) {
        problems.push('the DaemonSet does not run as the ServiceAccount of the kit');
      }
      if (daemonSet(f).metadata?.namespace !== sa.metadata?.namespace) {
        problems.push('the DaemonSet and the ServiceAccount are in different namespaces');
      }
      return problems;
    },
    breaks: {
      'DaemonSet runs as default': (f) => {
        podSpec(f).serviceAccountName = 'default';
      },
      'subject in another namespace': (f) => {
        const [subject] = only<ClusterRoleBinding>(f, 'ClusterRoleBinding').subjects ?? [];
        if (subject) subject.namespace = 'default';
      },
    },
  },
];
