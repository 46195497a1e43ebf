import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse } from 'yaml';

/** Repository root, from this file's location (test/deploy/). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const daemonsetDir = fileURLToPath(new URL('../../daemonset/', import.meta.url));

// The subset of the Kubernetes and kustomize schemas the checks read. Every field is optional:
// the manifests are untrusted input here, and a missing field must be a finding, not a crash.
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
export interface ClusterRole extends KubeObject {
  rules?: PolicyRule[];
}
export interface ClusterRoleBinding extends KubeObject {
  roleRef?: { apiGroup?: string; kind?: string; name?: string };
  subjects?: { kind?: string; name?: string; namespace?: string }[];
}
export interface ResourceQuota extends KubeObject {
  spec?: {
    hard?: Record<string, string | number>;
    scopeSelector?: {
      matchExpressions?: { scopeName?: string; operator?: string; values?: string[] }[];
    };
  };
}
export interface EnvVar {
  name?: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}
export interface Probe {
  httpGet?: { path?: string; port?: number | string; host?: string; scheme?: string };
}
export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type?: string };
}
export interface Container {
  name?: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort?: number; protocol?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: {
    requests?: Record<string, string | number>;
    limits?: Record<string, string | number>;
  };
  securityContext?: SecurityContext;
  volumeMounts?: { name?: string; mountPath?: string; readOnly?: boolean }[];
}
export interface Volume {
  name?: string;
  hostPath?: { path?: string; type?: string };
  emptyDir?: Record<string, unknown>;
}
export interface PodSpec {
  serviceAccountName?: string;
  priorityClassName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  dnsPolicy?: string;
  terminationGracePeriodSeconds?: number;
  tolerations?: { key?: string; operator?: string; value?: string; effect?: string }[];
  securityContext?: SecurityContext;
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
}
export interface DaemonSet extends KubeObject {
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    updateStrategy?: {
      type?: string;
      rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string };
    };
    template?: { metadata?: ObjectMeta; spec?: PodSpec };
  };
}
export interface Kustomization {
  resources?: string[];
  images?: { name?: string; newName?: string; newTag?: string; digest?: string }[];
}

/** One Dockerfile instruction, continuation lines joined, comments dropped. */
export interface DockerInstruction {
  keyword: string;
  args: string;
}

/** One manifest document and where it came from. */
export interface Manifest {
  file: string;
  object: KubeObject;
}

/**
 * Everything the deploy checks read, freshly parsed: callers may mutate it (the tests break a
 * copy on purpose to prove each check can fail).
 */
export interface DeployFiles {
  /** YAML files in daemonset/ other than kustomization.yaml. */
  manifestFiles: string[];
  manifests: Manifest[];
  /** Parse errors and warnings, as "file: message". */
  parseProblems: string[];
  kustomization: Kustomization;
  dockerfile: DockerInstruction[];
  dockerignore: string[];
}

/** Reads and parses daemonset/, Dockerfile and .dockerignore. */
export function loadDeployFiles(): DeployFiles {
  const yamlFiles = readdirSync(daemonsetDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const manifestFiles = yamlFiles.filter((f) => f !== 'kustomization.yaml');
  const manifests: Manifest[] = [];
  const parseProblems: string[] = [];
  for (const file of manifestFiles) {
    for (const doc of parseAllDocuments(readFileSync(daemonsetDir + file, 'utf8'))) {
      for (const e of [...doc.errors, ...doc.warnings]) parseProblems.push(`${file}: ${e.message}`);
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) continue; // an empty document, e.g. after a trailing ---
      if (typeof object !== 'object' || Array.isArray(object)) {
        parseProblems.push(`${file}: a document is not a mapping`);
        continue;
      }
      manifests.push({ file, object: object as KubeObject });
    }
  }
  const kustomization = parse(
    readFileSync(daemonsetDir + 'kustomization.yaml', 'utf8'),
  ) as Kustomization;
  return {
    manifestFiles,
    manifests,
    parseProblems,
    kustomization,
    dockerfile: parseDockerfile(readFileSync(repoRoot + 'Dockerfile', 'utf8')),
    dockerignore: readFileSync(repoRoot + '.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#')),
  };
}

/** Splits a Dockerfile into instructions: joins `\` continuations, drops comments and blanks. */
export function parseDockerfile(text: string): DockerInstruction[] {
  const out: DockerInstruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1).trimEnd() + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m?.[1] !== undefined) out.push({ keyword: m[1].toUpperCase(), args: m[2] ?? '' });
  }
  return out;
}
