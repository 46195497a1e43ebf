#!/usr/bin/env node
// Entry point. The code lives in dist/, built from src/ by `npm ci` (the prepare script).
const major = Number(process.versions.node.split('.')[0]);
if (major < 26) {
  process.stderr.write(
    `kube-lc-proxy needs Node.js 26 or newer; this is ${process.version}.\n` +
      'From the repository, run it through npx or npm run, which use the Node 26 the project installs.\n',
  );
  process.exit(1);
}
let main;
// `run` with iptables: listen on the ports of the rules a previous process left before loading
// anything else, so a restart refuses clients only while Node.js itself starts.
let prebound;
try {
  const early = await import('../dist/proxy/early-bind.js');
  if (early.runsWithIptables(process.argv.slice(2))) prebound = await early.bindAdoptedEarly();
} catch (err) {
  if (!(err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist'))) throw err;
}
try {
  ({ main } = await import('../dist/cli/index.js'));
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    process.stderr.write(
      `kube-lc-proxy is not built: run \`npm ci\` (or \`npm run build\`) first (${err.message}).\n`,
    );
    process.exit(1);
  }
  throw err;
}
process.exit(await main(process.argv.slice(2), { prebound }));
