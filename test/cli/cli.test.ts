import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  connectGreeted,
  startTcpBackend,
  tally,
  type GreetedClient,
  type TcpBackend,
} from '../support/backends.js';
import { lockFixedAddresses } from '../support/fixed-addresses.js';
import { manifestsFile, type ManifestsFile } from '../support/manifests.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

/** Runs the CLI to completion. */
function cli(
  args: string[],
  timeoutMs = 10_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/kube-lc-proxy.js', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kube-lc-proxy ${args.join(' ')} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('flags', () => {
  it.each([
    [['run', '--bogus'], /Unknown argument: bogus/],
    [
      ['run', '--source', 'file:x', '--shutdown-grace', '5x'],
      /--shutdown-grace: not a duration: "5x"/,
    ],
    [['run', '--source', 'nope'], /--source: expected k8s or file:PATH/],
    [['run', '--intercept', 'nat'], /intercept.*Choices/s],
    [
      ['run', '--source', 'file:x', '--metrics-address', 'localhost'],
      /--metrics-address: expected HOST:PORT/,
    ],
    [['run', '--source', 'file:x', '--drain-max-concurrent', '0%'], /--drain-max-concurrent/],
    [['run', '--source', 'file:x', '--rebalance-threshold', '0.5'], /--rebalance-threshold/],
    [['run', '--source', 'file:x', '--connect-attempts', '0'], /--connect-attempts/],
    [['demo', '--scale-to', '1'], /--scale-to/],
    [[], /Name a command/],
  ])('%j exits 2 naming the flag', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--help documents every run flag with its default', async () => {
    const r = await cli(['run', '--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      'source',
      'intercept',
      'metrics-address',
      'log-level',
      'shutdown-grace',
      'max-connection-age',
      'drain-grace',
      'drain-max-concurrent',
      'drain-rate',
      'rebalance-threshold',
      'slow-start-window',
      'sync-min-interval',
      'kubeconfig',
      'node-name',
      'all-services',
      'h2-drain',
      'connect-timeout',
      'connect-attempts',
    ]) {
      const line =
        r.stdout.split('\n--').find((l) => l.trimStart().startsWith(`--${flag} `)) ??
        r.stdout.slice(r.stdout.indexOf(`--${flag} `), r.stdout.indexOf(`--${flag} `) + 400);
      expect(line, flag).toMatch(/\[default: /);
    }
  });

  it('a bad manifests file at start exits 1 naming the file, the object and the field', async () => {
    const f = await manifestsFile([]);
    try {
      await f.writeText(
        'apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: default}\nspec: {clusterIP: 127.0.0.99, ports: [{name: grpc, port: 70000}]}\n',
      );
      const r = await cli([
        'run',
        '--source',
        `file:${f.path}`,
        '--metrics-address',
        '127.0.0.1:0',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(f.path);
      expect(r.stderr).toContain('Service default/echo');
      expect(r.stderr).toContain('spec.ports[0].port');
    } finally {
      await f.remove();
    }
  });
});

// The acceptance scenario of the README, on exactly its addresses.
describe('examples/echo.yaml through the real CLI', () => {
  let backends: TcpBackend[] = [];
  let proxy: ProxyProcess;
  let file: ManifestsFile;
  const clients: GreetedClient[] = [];
  let release: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    // The tutorial test (test/docs/try-k8s-locally.test.ts) binds the same addresses.
    release = await lockFixedAddresses();
    backends = await Promise.all(
      [11, 12, 13, 14, 15].map((n) => startTcpBackend(`127.0.0.${n}`, 9000)),
    );
    const objects = (await readFile('examples/echo.yaml', 'utf8'))
      .split(/^---$/m)
      .map((d) => parse(d) as Record<string, unknown>);
    file = await manifestsFile(objects);
    proxy = await startProxyProcess(
      ['--source', `file:${file.path}`, '--intercept', 'none', '--metrics-per-endpoint'],
      15_000,
      '127.0.0.1:9901',
    );
  }, 150_000);

  afterAll(async () => {
    clients.forEach((c) => c.socket.destroy());
    await proxy?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await file?.remove();
    await release?.();
  });

  const open = async (n: number) => {
    const out: GreetedClient[] = [];
    for (let i = 0; i < n; i++) out.push(await connectGreeted('127.0.0.50', 8080));
    clients.push(...out);
    return out;
  };

  it('holds 40 long-lived connections exactly 10 per endpoint, shown by /metrics and `status`', async () => {
    expect(tally(await open(40))).toEqual({
      '127.0.0.11:9000': 10,
      '127.0.0.12:9000': 10,
      '127.0.0.13:9000': 10,
      '127.0.0.14:9000': 10,
    });
    for (const n of [11, 12, 13, 14]) {
      expect(
        await proxy.metric('kube_lc_proxy_active_connections', { endpoint: `127.0.0.${n}:9000` }),
      ).toBe(10);
    }
    const status = await cli(['status', '--metrics-address', '127.0.0.1:9901']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/default\/echo:grpc\s+127\.0\.0\.50:8080/);
    expect(status.stdout).toMatch(/-> 127\.0\.0\.11:9000\s+ready\s+1\s+10\s+0\s+10/);
  });

  it('ignores SIGUSR1 (no debugger port) and keeps serving', async () => {
    proxy.child.kill('SIGUSR1');
    const deadline = Date.now() + 5000;
    while (
      !proxy.logs.some((l) => l.msg === 'signal ignored' && l.signal === 'SIGUSR1') &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(proxy.logs.some((l) => l.msg === 'signal ignored')).toBe(true);
    const c = await connectGreeted('127.0.0.50', 8080);
    clients.push(c);
    expect(c.backend).toMatch(/^127\.0\.0\.1[1-4]:9000$/);
  });

  it('sends the next 10 connections to a fifth endpoint added to the file', async () => {
    const text = await readFile('examples/echo.yaml', 'utf8');
    await file.writeText(
      `${text}  - addresses: [127.0.0.15]\n    conditions: { ready: true, serving: true, terminating: false }\n`,
    );
    const deadline = Date.now() + 5000;
    while (
      (await proxy.metric('kube_lc_proxy_endpoints', { state: 'ready' })) !== 5 &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(tally(await open(10))).toEqual({ '127.0.0.15:9000': 10 });
  });

  it('gives an endpoint set to ready: false, serving: true, terminating: true no new connection', async () => {
    const text = await readFile('examples/echo.yaml', 'utf8');
    const terminating = text.replace(
      '- addresses: [127.0.0.11]\n    conditions: { ready: true, serving: true, terminating: false }',
      '- addresses: [127.0.0.11]\n    conditions: { ready: false, serving: true, terminating: true }',
    );
    expect(terminating).not.toBe(text);
    await file.writeText(terminating);
    const deadline = Date.now() + 5000;
    while (
      (await proxy.metric('kube_lc_proxy_endpoints', { state: 'terminating' })) !== 1 &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const next = tally(await open(12));
    expect(next['127.0.0.11:9000']).toBeUndefined();
    expect(Object.values(next).reduce((a, b) => a + b, 0)).toBe(12);
  });
});
