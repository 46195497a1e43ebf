import { KINDS, apiVersionOf, type KindSpec } from './kinds/index.js';

/**
 * Discovery documents, legacy (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`)
 * and aggregated (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`, which kubectl 1.30+ asks for
 * first on /api and /apis), all built from KINDS. Pure: the server picks one by path and Accept.
 */

/** The version the stand-in claims in /version: the API surface it imitates. */
export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0+kube-lc-proxy-stand-in',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'none (stand-in written in TypeScript)',
  compiler: 'gc',
  platform: 'linux/amd64',
} as const;

function groups(): Map<string, KindSpec[]> {
  const out = new Map<string, KindSpec[]>();
  for (const k of KINDS) {
    if (k.group === '') continue;
    const list = out.get(k.group) ?? [];
    list.push(k);
    out.set(k.group, list);
  }
  return out;
}

function versionsOf(kinds: readonly KindSpec[]): string[] {
  return [...new Set(kinds.map((k) => k.version))];
}

function legacyResource(k: KindSpec): Record<string, unknown> {
  return {
    name: k.resource,
    singularName: k.singular,
    namespaced: k.namespaced,
    kind: k.kind,
    verbs: k.verbs,
    ...(k.shortNames.length > 0 ? { shortNames: k.shortNames } : {}),
    ...(k.resource === 'services' ? { categories: ['all'] } : {}),
  };
}

function aggregatedResource(k: KindSpec): Record<string, unknown> {
  return {
    resource: k.resource,
    responseKind: { group: k.group, version: k.version, kind: k.kind },
    scope: k.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: k.singular,
    verbs: k.verbs,
    ...(k.shortNames.length > 0 ? { shortNames: k.shortNames } : {}),
    ...(k.resource === 'services' ? { categories: ['all'] } : {}),
  };
}

function aggregatedGroup(name: string, kinds: readonly KindSpec[]): Record<string, unknown> {
  return {
    metadata: name === '' ? { creationTimestamp: null } : { name, creationTimestamp: null },
    versions: versionsOf(kinds).map((version) => ({
      version,
      resources: kinds.filter((k) => k.version === version).map(aggregatedResource),
      freshness: 'Current',
    })),
  };
}

function groupObject(name: string, kinds: readonly KindSpec[]): Record<string, unknown> {
  const versions = versionsOf(kinds).map((version) => ({
    groupVersion: `${name}/${version}`,
    version,
  }));
  return { name, versions, preferredVersion: versions[0] };
}

/** A discovery reply: the body, and whether it is the aggregated form. */
export interface DiscoveryDoc {
  readonly body: Record<string, unknown>;
  readonly aggregated: boolean;
}

/**
 * The discovery document for `pathname`, or undefined when the path is not a discovery path.
 * `aggregated` asks for the v2 form; only /api and /apis have one (other paths ignore it).
 */
export function discoveryDoc(
  pathname: string,
  aggregated: boolean,
  serverAddress: string,
): DiscoveryDoc | undefined {
  const path = pathname.replace(/\/+$/, '') || '/';
  const core = KINDS.filter((k) => k.group === '');
  if (path === '/api') {
    if (aggregated) {
      return {
        aggregated: true,
        body: {
          kind: 'APIGroupDiscoveryList',
          apiVersion: 'apidiscovery.k8s.io/v2',
          metadata: {},
          items: [aggregatedGroup('', core)],
        },
      };
    }
    return {
      aggregated: false,
      body: {
        kind: 'APIVersions',
        versions: versionsOf(core),
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
      },
    };
  }
  if (path === '/apis') {
    const all = [...groups()];
    if (aggregated) {
      return {
        aggregated: true,
        body: {
          kind: 'APIGroupDiscoveryList',
          apiVersion: 'apidiscovery.k8s.io/v2',
          metadata: {},
          items: all.map(([name, kinds]) => aggregatedGroup(name, kinds)),
        },
      };
    }
    return {
      aggregated: false,
      body: {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: all.map(([name, kinds]) => groupObject(name, kinds)),
      },
    };
  }
  const coreVersion = /^\/api\/([^/]+)$/.exec(path);
  if (coreVersion) return resourceList(core, '', coreVersion[1] as string);
  const group = /^\/apis\/([^/]+)$/.exec(path);
  if (group) {
    const kinds = groups().get(group[1] as string);
    if (!kinds) return undefined;
    return {
      aggregated: false,
      body: { kind: 'APIGroup', apiVersion: 'v1', ...groupObject(group[1] as string, kinds) },
    };
  }
  const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
  if (gv)
    return resourceList(groups().get(gv[1] as string) ?? [], gv[1] as string, gv[2] as string);
  return undefined;
}

function resourceList(
  kinds: readonly KindSpec[],
  group: string,
  version: string,
): DiscoveryDoc | undefined {
  const served = kinds.filter((k) => k.version === version);
  if (served.length === 0) return undefined;
  return {
    aggregated: false,
    body: {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: apiVersionOf({ group, version }),
      resources: served.map(legacyResource),
    },
  };
}
