/**
 * Global setup of `npm run test:e2e` (vitest.e2e.config.ts), run before the build: the
 * end-to-end tests need root, iptables, iproute2 and sysctl (network namespaces, nat rules,
 * forwarding). Without them it stops at once with one line naming what is missing and how to get
 * it, instead of failing every test with "exec of iptables failed".
 *
 * Imports only node: builtins, so plain Node can load it (its test runs it with a bare PATH).
 */
import { spawnSync } from 'node:child_process';

/** How the check looks at the machine; tests inject their own. */
export interface Probes {
  isRoot(): boolean;
  /** Whether `command args...` runs and exits 0. */
  runs(command: string, args: readonly string[]): boolean;
}

/** One requirement: a command that must run, and how to get it on Debian/Ubuntu. */
interface Requirement {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly install: string;
}

/** What the e2e harness and the proxy run (test/e2e/harness/netns.ts, src/iptables/apply.ts). */
export const REQUIREMENTS: readonly Requirement[] = [
  { name: 'iptables', command: 'iptables-restore', args: ['--version'], install: 'iptables' },
  { name: 'iproute2', command: 'ip', args: ['-V'], install: 'iproute2' },
  { name: 'sysctl', command: 'sysctl', args: ['--version'], install: 'procps' },
];

/**
 * The one line to print when something is missing, else undefined. Packages are named for
 * Debian and Ubuntu, whose names the CI script (.ci/run) installs.
 */
export function missingPrerequisites(probes: Probes): string | undefined {
  const missing = REQUIREMENTS.filter((r) => !probes.runs(r.command, r.args));
  const parts: string[] = [];
  if (missing.length > 0) {
    const names = missing.map((r) => `${r.name} (${r.command} not found)`).join(', ');
    const pkgs = missing.map((r) => r.install).join(' ');
    parts.push(`missing ${names}: install with "apt-get install ${pkgs}"`);
  }
  if (!probes.isRoot()) parts.push('not root: run "sudo npm run test:e2e"');
  if (parts.length === 0) return undefined;
  return `test:e2e needs root, iptables, iproute2 and sysctl (network namespaces): ${parts.join('; ')}`;
}

/** Probes of this machine, looking commands up on `path`. */
export function systemProbes(path = process.env['PATH'] ?? ''): Probes {
  return {
    isRoot: () => process.getuid?.() === 0,
    runs: (command, args) =>
      spawnSync(command, [...args], { stdio: 'ignore', env: { ...process.env, PATH: path } })
        .status === 0,
  };
}

/** Vitest global setup: exit 1 with the one line when a prerequisite is missing. */
export default function setup(): void {
  const line = missingPrerequisites(systemProbes());
  if (line === undefined) return;
  process.stderr.write(`${line}\n`);
  process.exit(1);
}
