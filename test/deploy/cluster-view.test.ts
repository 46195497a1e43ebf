import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// daemonset/cluster-view/: the kustomize component that turns the cluster view on with the k8s
// source. Rendered with the real kubectl, as a user's overlay would.
const root = fileURLToPath(new URL('../../daemonset/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'klp-overlay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[];
  spec?: {
    template: {
      spec: {
        containers: {
          args: string[];
          env: { name: string }[];
          volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
        }[];
        volumes: { name: string; secret?: { secretName: string } }[];
      };
    };
  };
}

function render(): Obj[] {
  cpSync(root, join(dir, 'base'), { recursive: true });
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [base]\ncomponents: [base/cluster-view]\n',
  );
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

describe('daemonset/cluster-view component', () => {
  const objs = render();

  it('grants get and update of the aggregator Lease by name, create of leases, in the namespace only', () => {
    const roles = objs.filter((o) => o.kind === 'Role');
    expect(roles).toHaveLength(1);
    expect(roles[0]?.metadata.namespace).toBe('kube-lc-proxy');
    expect(roles[0]?.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['kube-lc-proxy-aggregator'],
        verbs: ['get', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    const binding = objs.find((o) => o.kind === 'RoleBinding') as unknown as {
      roleRef: { name: string };
      subjects: { name: string; namespace: string }[];
    };
    expect(binding.roleRef.name).toBe(roles[0]?.metadata.name);
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'kube-lc-proxy', namespace: 'kube-lc-proxy' },
    ]);
  });

  it('mounts the peer secret read-only and points --peer-secret-file at it', () => {
    const ds = objs.find((o) => o.kind === 'DaemonSet');
    const pod = ds?.spec?.template.spec;
    const c = pod?.containers[0];
    expect(c?.args).toContain('--peer-secret-file=/etc/kube-lc-proxy/peer/secret');
    expect(c?.env.map((e) => e.name)).toContain('POD_NAMESPACE');
    expect(c?.volumeMounts).toContainEqual({
      name: 'peer-secret',
      mountPath: '/etc/kube-lc-proxy/peer',
      readOnly: true,
    });
    expect(pod?.volumes.find((v) => v.name === 'peer-secret')?.secret?.secretName).toBe(
      'kube-lc-proxy-peer',
    );
  });
});
