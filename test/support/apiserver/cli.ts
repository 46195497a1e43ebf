/**
 * `npm run apiserver -- --kubeconfig FILE [--port N] [--host 127.0.0.1]`: the stand-in API
 * server on its own, for trying the k8s source and kubectl on one machine
 * (docs/try-k8s-locally.md). It writes a kubeconfig for itself to FILE, prints one line saying
 * where it listens, and runs until SIGINT or SIGTERM. State lives in memory only.
 *
 * Development only: it lives under test/ and is not in the npm package or the image. It runs
 * with the project's Node, which runs erasable TypeScript directly; the sources import each
 * other with `.js` specifiers (as NodeNext wants), so a resolve hook maps those to the `.ts`
 * files beside them before the server is loaded.
 */
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (
      parent !== undefined &&
      parent.endsWith('.ts') &&
      /^\.\.?\//.test(specifier) &&
      specifier.endsWith('.js') &&
      !existsSync(fileURLToPath(new URL(specifier, parent)))
    ) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
    return nextResolve(specifier, context);
  },
});

const USAGE = 'usage: npm run apiserver -- --kubeconfig FILE [--port N] [--host 127.0.0.1]';

function fail(message: string): never {
  process.stderr.write(`apiserver: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let values: {
  kubeconfig?: string | undefined;
  port: string;
  host: string;
  help?: boolean | undefined;
};
try {
  ({ values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.kubeconfig === undefined || values.kubeconfig === '')
  fail('--kubeconfig FILE is required');
const port = Number(values.port);
if (!/^\d+$/.test(values.port) || port > 65535)
  fail(`--port: expected 0..65535, got "${values.port}"`);
if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(values.host)) {
  fail(
    `--host: expected a loopback address 127.x.y.z (the stand-in has no authentication), got "${values.host}"`,
  );
}

const { FakeApiServer } = (await import('./index.ts')) as typeof import('./index.js');
let api: Awaited<ReturnType<typeof FakeApiServer.start>>;
try {
  api = await FakeApiServer.start({ host: values.host, port, bookmarkIntervalMs: 60_000 });
} catch (err) {
  fail(`cannot listen on ${values.host}:${port}: ${(err as Error).message}`);
}
await api.writeKubeconfig(values.kubeconfig);
process.stdout.write(
  `stand-in API server listening on ${api.url}; kubeconfig written to ${values.kubeconfig}\n`,
);

let closing = false;
async function shutdown(): Promise<void> {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(0), 2000).unref();
  await api.close();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
