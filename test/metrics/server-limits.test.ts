import { request } from 'node:http';
import { Registry, Gauge } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MetricsServer } from '../../src/metrics/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

/** A registry whose one gauge counts how often it was collected (rendered). */
function countingRegistry(): { registry: Registry; renders: () => number } {
  const registry = new Registry();
  let n = 0;
  new Gauge({
    name: 'test_renders',
    help: 'renders',
    registers: [registry],
    collect() {
      n++;
      this.set(n);
    },
  });
  return { registry, renders: () => n };
}

async function start(opts: { maxInFlight?: number; maxConnections?: number } = {}) {
  const { registry, renders } = countingRegistry();
  const server = new MetricsServer({
    registry,
    ready: () => true,
    state: () => ({ ready: true, tableVersion: 1, servicePorts: [] }),
    logger: silentLogger(),
    ...opts,
  });
  const addr = await server.listen('127.0.0.1', 0);
  cleanups.push(() => server.close());
  return { server, renders, port: addr.port };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (x: string) => (body += x));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics server limits', () => {
  it('gives a lone scraper a fresh text every time', async () => {
    const { port, renders } = await start();
    const a = await get(port, '/metrics');
    const b = await get(port, '/metrics');
    expect(a.body).toContain('test_renders 1');
    expect(b.body).toContain('test_renders 2');
    expect(renders()).toBe(2);
  });

  it('serves a flood of scrapes from shared texts, each answered 200 or 503', async () => {
    const { port, renders, server } = await start({ maxInFlight: 8, maxConnections: 1000 });
    const answers = await Promise.all(Array.from({ length: 200 }, () => get(port, '/metrics')));
    const ok = answers.filter((r) => r.status === 200);
    const shed = answers.filter((r) => r.status === 503);
    expect(ok.length + shed.length).toBe(200);
    expect(ok.length).toBeGreaterThan(0);
    expect(shed.length).toBe(server.stats.shed);
    // Far fewer renders than answers: overlapping scrapes shared a text.
    expect(renders()).toBeLessThan(ok.length);
  });
});
