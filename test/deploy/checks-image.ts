import { readFileSync } from 'node:fs';
import { instruction, type Check } from './check.js';
import type { DeployFiles, DockerInstruction } from './load.js';

/** The official Node 26 slim image, any Debian codename, optionally pinned by digest. */
const node26Slim =
  /^(?:docker\.io\/)?(?:library\/)?node:26(?:\.\d+){0,2}-(?:[a-z]+-)?slim(?:@sha256:[0-9a-f]{64})?$/;

interface Stage {
  /** The FROM reference with build arguments substituted. */
  image: string;
  name: string | undefined;
  body: DockerInstruction[];
}

/** Splits the Dockerfile into stages, substituting global ARG defaults into FROM. */
function stages(f: DeployFiles): Stage[] {
  const globals = new Map<string, string>();
  const out: Stage[] = [];
  for (const i of f.dockerfile) {
    if (i.keyword === 'ARG' && out.length === 0) {
      const [name, ...rest] = i.args.split('=');
      globals.set(
        (name ?? '').trim(),
        rest
          .join('=')
          .trim()
          .replace(/^"(.*)"$/, '$1'),
      );
    } else if (i.keyword === 'FROM') {
      const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const image = (words[0] ?? '').replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_, a?: string, b?: string) => globals.get(a ?? b ?? '') ?? '',
      );
      out.push({ image, name: words[1]?.toUpperCase() === 'AS' ? words[2] : undefined, body: [] });
    } else {
      out.at(-1)?.body.push(i);
    }
  }
  return out;
}

function runtimeStage(f: DeployFiles): Stage {
  const last = stages(f).at(-1);
  if (last === undefined) throw new Error('the Dockerfile has no FROM');
  return last;
}

function runs(f: DeployFiles): string[] {
  return runtimeStage(f)
    .body.filter((i) => i.keyword === 'RUN')
    .map((i) => i.args);
}

/** The exec-form (JSON array) arguments of the last `keyword`, or undefined for shell form. */
function execForm(f: DeployFiles, keyword: string): unknown {
  const i = runtimeStage(f).body.findLast((x) => x.keyword === keyword);
  try {
    return i === undefined ? undefined : JSON.parse(i.args);
  } catch {
    return undefined;
  }
}

/** The malloc settings bench/lib.sh runs the proxy with (KLP_ENV), as NAME=VALUE strings. */
function benchMallocEnv(): string[] {
  const line = /^KLP_ENV=\(([^)]*)\)/m.exec(readFileSync('bench/lib.sh', 'utf8'));
  return line === null ? [] : (line[1] as string).trim().split(/\s+/);
}

/** The Dockerfile and .dockerignore. */
export const imageChecks: Check[] = [
  {
    name: 'the runtime stage sets the glibc malloc settings the benchmarks measure',
    check: (f) => {
      const want = benchMallocEnv();
      if (want.length === 0) return ['bench/lib.sh has no KLP_ENV'];
      const env = runtimeStage(f)
        .body.filter((i) => i.keyword === 'ENV')
        .flatMap((i) => i.args.split(/\s+/));
      return want.filter((v) => !env.includes(v)).map((v) => `ENV ${v} missing`);
    },
    breaks: {
      'no malloc settings': (f) => {
        f.dockerfile = f.dockerfile.filter(
          (i) => !(i.keyword === 'ENV' && i.args.includes('MALLOC_')),
        );
      },
    },
  },
  {
    name: 'every Dockerfile stage starts FROM the official Node 26 slim image',
    check: (f) => {
      const all = stages(f);
      const names = new Set(all.map((s) => s.name).filter((n) => n !== undefined));
      if (all.length === 0) return ['no FROM'];
      return all
        .filter((s) => !node26Slim.test(s.image) && !names.has(s.image))
        .map((s) => `FROM ${s.image} is not node:26-*-slim`);
    },
    breaks: {
      'Node 24': (f) => {
        instruction(f, (i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE')).args =
          'NODE_IMAGE=node:24-bookworm-slim';
      },
      'the full image': (f) => {
        instruction(f, (i) => i.keyword === 'FROM').args = 'node:26-bookworm AS build';
      },
    },
  },
  {
    name: 'multi-stage: the runtime stage copies dist/ from a build stage',
    check: (f) => {
      const all = stages(f);
      const earlier = new Set(all.slice(0, -1).map((s) => s.name ?? ''));
      const copies = runtimeStage(f).body.some((i) => {
        const from = /--from=(\S+)/.exec(i.args)?.[1];
        return i.keyword === 'COPY' && /\bdist\b/.test(i.args) && from && earlier.has(from);
      });
      return all.length >= 2 && copies ? [] : ['no COPY --from=<build stage> of dist/'];
    },
    breaks: {
      'dist not copied': (f) => {
        f.dockerfile = f.dockerfile.filter((i) => !i.args.includes('--from='));
      },
    },
  },
  {
    name: 'the runtime stage installs iptables with apt-get',
    check: (f) =>
      runs(f).some((r) => /apt-get\s+install\b[^&|;]*\biptables\b/.test(r))
        ? []
        : ['no apt-get install iptables in the runtime stage'],
    breaks: {
      'nftables instead': (f) => {
        instruction(f, (i) => i.args.includes('apt-get install')).args =
          'apt-get update && apt-get install -y nftables';
      },
    },
  },
  {
    name: 'the runtime stage installs production dependencies only, without install scripts',
    check: (f) => {
      const npm = runs(f).filter((r) => /\bnpm\s+(ci|install|i)\b/.test(r));
      const ok = (r: string) => r.includes('--omit=dev') && r.includes('--ignore-scripts');
      if (npm.length === 0) return ['no npm ci in the runtime stage'];
      return npm.filter((r) => !ok(r)).map((r) => `RUN ${r} lacks --omit=dev --ignore-scripts`);
    },
    breaks: {
      'dev dependencies too': (f) => {
        const i = instruction(f, (x) => x.args.includes('--omit=dev'));
        i.args = i.args.replace('--omit=dev', '');
      },
    },
  },
  {
    name: 'ENTRYPOINT runs bin/kube-lc-proxy.js with node, CMD is run',
    check: (f) => {
      const problems: string[] = [];
      const entrypoint = JSON.stringify(execForm(f, 'ENTRYPOINT'));
      if (entrypoint !== JSON.stringify(['node', '/app/bin/kube-lc-proxy.js'])) {
        problems.push(`ENTRYPOINT is ${entrypoint}`);
      }
      const cmd = JSON.stringify(execForm(f, 'CMD'));
      if (cmd !== JSON.stringify(['run'])) problems.push(`CMD is ${cmd}`);
      return problems;
    },
    breaks: {
      'shell-form entrypoint': (f) => {
        instruction(f, (i) => i.keyword === 'ENTRYPOINT').args = 'node /app/bin/kube-lc-proxy.js';
      },
      'another command': (f) => {
        instruction(f, (i) => i.keyword === 'CMD').args = '["demo"]';
      },
    },
  },
  {
    name: '.dockerignore keeps node_modules and dist out of the build context',
    check: (f) =>
      ['node_modules', 'dist']
        .filter((d) => !f.dockerignore.some((l) => l.replace(/^(\*\*\/)|\/$/g, '') === d))
        .map((d) => `${d} is not ignored`),
    breaks: {
      'node_modules sent': (f) => {
        f.dockerignore = f.dockerignore.filter((l) => !l.includes('node_modules'));
      },
    },
  },
];
