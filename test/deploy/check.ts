import type {
  Container,
  DaemonSet,
  DeployFiles,
  DockerInstruction,
  KubeObject,
  PodSpec,
} from './load.js';

/**
 * One property of the deployment artefacts. `check` returns findings, [] when the property holds;
 * it may throw when the files are too broken to look at, which also counts as a finding. Every
 * entry of `breaks` mutates a freshly loaded copy so that the property no longer holds: the tests
 * run each one to prove the check can fail.
 */
export interface Check {
  name: string;
  check: (f: DeployFiles) => string[];
  breaks: Record<string, (f: DeployFiles) => void>;
}

/** The namespace every namespaced object of the kit lives in. */
export const namespace = 'kube-lc-proxy';
/** The name of the proxy's container in the DaemonSet. */
export const containerName = 'kube-lc-proxy';

export function objectsOfKind<T extends KubeObject>(f: DeployFiles, kind: string): T[] {
  return f.manifests.filter((m) => m.object.kind === kind).map((m) => m.object as T);
}

/** The single object of `kind`; throws when there is none or more than one. */
export function only<T extends KubeObject>(f: DeployFiles, kind: string): T {
  const all = objectsOfKind<T>(f, kind);
  const [first] = all;
  if (first === undefined || all.length !== 1) {
    throw new Error(`expected exactly one ${kind}, found ${all.length}`);
  }
  return first;
}

export function daemonSet(f: DeployFiles): DaemonSet {
  return only<DaemonSet>(f, 'DaemonSet');
}

export function podSpec(f: DeployFiles): PodSpec {
  const spec = daemonSet(f).spec?.template?.spec;
  if (spec === undefined) throw new Error('DaemonSet has no spec.template.spec');
  return spec;
}

/** Containers and init containers: security properties hold for all of them. */
export function allContainers(f: DeployFiles): Container[] {
  const spec = podSpec(f);
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

export function proxyContainer(f: DeployFiles): Container {
  const c = podSpec(f).containers?.find((x) => x.name === containerName);
  if (c === undefined) throw new Error(`DaemonSet has no container named ${containerName}`);
  return c;
}

/** The first instruction matching `pred`; throws when there is none. For breaks. */
export function instruction(
  f: DeployFiles,
  pred: (i: DockerInstruction) => boolean,
): DockerInstruction {
  const i = f.dockerfile.find(pred);
  if (i === undefined) throw new Error('no such Dockerfile instruction');
  return i;
}
