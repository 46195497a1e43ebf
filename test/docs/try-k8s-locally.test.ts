/**
 * Runs docs/try-k8s-locally.md: every command of its sh blocks, in order, in the repository's
 * root, as a shell would (bash -c per line), and checks the output of each command the doc shows
 * one for. The doc is the script, so doc and test cannot drift. Rules that stand for a user at
 * a terminal:
 * - `CMD &` starts a background job; the next command is retried until it exits 0 (the job
 *   may still be starting), `kill %1 %2` stops jobs by number.
 * - `export NAME=VALUE` sets NAME (expanded by bash) for the commands after it.
 * - A command with a shown output is retried until its output contains the shown lines (the
 *   proxy follows the API server asynchronously); the time that took is reported.
 * It binds the README's fixed addresses (metrics 127.0.0.1:9901, 127.0.0.50:8080), so it holds
 * their lock.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockFixedAddresses } from '../support/fixed-addresses.js';
import { KUBECTL } from '../support/kubectl.js';
import { containsInOrder, docSteps } from './markdown-commands.js';

const DOC = 'docs/try-k8s-locally.md';
const CREATED = ['kc.yaml', 'proxy.log'];

function sh(
  command: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('docSteps', () => {
  it('attaches each text block to the last command before it and skips comments', () => {
    const md =
      '```sh\n# c\na\nb\n```\n\n```text\nout 1\n\nout 2\n```\n```js\nx\n```\n```sh\nc &\n```\n';
    expect(docSteps(md)).toEqual([
      { command: 'a', expected: undefined, line: 3 },
      { command: 'b', expected: ['out 1', 'out 2'], line: 4 },
      { command: 'c &', expected: undefined, line: 16 },
    ]);
    expect(containsInOrder('x\nout   1\ny\nout 2', ['out 1', 'out 2'])).toBe(true);
    expect(containsInOrder('out 2\nout 1', ['out 1', 'out 2'])).toBe(false);
    expect(containsInOrder('default svc 12s', ['default svc 0s'])).toBe(true);
  });
});

describe.skipIf(KUBECTL === undefined)(
  KUBECTL === undefined
    ? 'SKIPPED: kubectl not found on PATH (install kubectl v1.32+, see .ci/run): docs/try-k8s-locally.md'
    : 'docs/try-k8s-locally.md, every command',
  () => {
    let release: (() => Promise<void>) | undefined;
    let cacheDir: string;
    const jobs: ChildProcess[] = [];
    const followed: { ms: number; attempts: number }[] = [];

    beforeAll(async () => {
      release = await lockFixedAddresses();
      for (const f of CREATED) {
        if (existsSync(f))
          throw new Error(`${f} exists in the repository root: move it away first`);
      }
      cacheDir = await mkdtemp(join(tmpdir(), 'klp-tutorial-'));
    }, 150_000);

    afterAll(async () => {
      for (const j of jobs) {
        if (j.exitCode === null && j.signalCode === null && j.pid !== undefined) {
          try {
            process.kill(-j.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      for (const f of CREATED) await rm(f, { force: true });
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
      await release?.();
      if (followed.length > 0) {
        console.log(
          `tutorial: status matched after ${followed.map((f) => `${f.ms} ms (attempt ${f.attempts})`).join(', ')}`,
        );
      }
    });

    it('runs in order and shows what the doc says', async () => {
      const steps = docSteps(await readFile(DOC, 'utf8'));
      expect(steps.length).toBeGreaterThan(8);
      const env: NodeJS.ProcessEnv = { ...process.env, KUBECACHEDIR: cacheDir };
      delete env['KUBECONFIG'];
      let afterJob = false;
      for (const step of steps) {
        const where = `${DOC}:${step.line}: ${step.command}`;
        const exported = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(step.command);
        if (exported) {
          const r = await sh(`printf %s ${exported[2]}`, env);
          env[exported[1] as string] = r.stdout;
          continue;
        }
        const killJobs = /^kill((?: %\d+)+)$/.exec(step.command);
        if (killJobs) {
          for (const n of (killJobs[1] as string).trim().split(' ')) {
            const job = jobs[Number(n.slice(1)) - 1];
            if (!job?.pid) throw new Error(`${where}: no job ${n}`);
            const exited = once(job, 'exit');
            process.kill(-job.pid, 'SIGTERM');
            await exited;
          }
          continue;
        }
        if (step.command.endsWith(' &')) {
          const job = spawn('bash', ['-c', step.command.slice(0, -2)], {
            env,
            detached: true,
            stdio: 'ignore',
          });
          jobs.push(job);
          afterJob = true;
          continue;
        }
        const start = Date.now();
        const deadline = start + 15_000;
        let attempts = 0;
        for (;;) {
          attempts++;
          const r = await sh(step.command, env);
          const ok =
            r.code === 0 &&
            (step.expected === undefined || containsInOrder(r.stdout, step.expected));
          if (ok) break;
          const retry = afterJob || step.expected !== undefined;
          if (!retry || Date.now() > deadline) {
            throw new Error(
              `${where}\nexit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- expected\n${(step.expected ?? []).join('\n')}`,
            );
          }
          await new Promise((res) => setTimeout(res, 100));
        }
        if (step.command.includes('kube-lc-proxy status') && !afterJob) {
          followed.push({ ms: Date.now() - start, attempts });
        }
        afterJob = false;
      }
      expect(jobs.every((j) => j.exitCode !== null || j.signalCode !== null)).toBe(true);
    }, 180_000);
  },
);
