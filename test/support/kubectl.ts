import { execFile, spawnSync } from 'node:child_process';

/**
 * The real kubectl CLI, found on PATH. `undefined` when absent: the kubectl suites then skip with
 * a title that says so. .ci/run refuses to run without it and sets KLP_REQUIRE_KUBECTL=1, which
 * turns the skip into a failure.
 */
export const KUBECTL: string | undefined = (() => {
  const r = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.status === 0) return 'kubectl';
  // .ci/run sets this: in CI a missing kubectl is a failure, not a skip.
  if (process.env['KLP_REQUIRE_KUBECTL'] === '1') {
    throw new Error('KLP_REQUIRE_KUBECTL=1 but kubectl is not on PATH (install kubectl 1.32+)');
  }
  return undefined;
})();

/** What one kubectl run printed. */
export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where kubectl reads its config and keeps its discovery cache (never the user's ~/.kube). */
export interface KubectlEnv {
  readonly kubeconfig: string;
  readonly cacheDir: string;
}

/**
 * Runs `kubectl args...` (no shell) against `env`, with optional stdin, bounded by
 * `timeoutMs`. Resolves with the exit code and output; never rejects for a non-zero exit.
 */
export function kubectl(
  env: KubectlEnv,
  args: readonly string[],
  opts: { stdin?: string; timeoutMs?: number; extraEnv?: Record<string, string> } = {},
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    if (KUBECTL === undefined) return reject(new Error('kubectl is not installed'));
    const child = execFile(
      KUBECTL,
      [...args],
      {
        timeout: opts.timeoutMs ?? 20_000,
        env: {
          ...process.env,
          KUBECONFIG: env.kubeconfig,
          KUBECACHEDIR: env.cacheDir,
          ...opts.extraEnv,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
    else child.stdin?.end();
  });
}

/** Like `kubectl`, but throws with the output when the exit code is not 0. */
export async function kubectlOk(
  env: KubectlEnv,
  args: readonly string[],
  opts: { stdin?: string; extraEnv?: Record<string, string> } = {},
): Promise<string> {
  const r = await kubectl(env, args, opts);
  if (r.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}
