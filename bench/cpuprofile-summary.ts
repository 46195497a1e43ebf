/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the time went, by function (self
 * and inclusive time) and by area (kube-lc-proxy code, Node.js core, dependencies, native and V8).
 * Functions of the project are mapped back to src/*.ts through dist/'s source maps.
 *
 *   node_modules/.bin/node bench/cpuprofile-summary.ts PROFILE.cpuprofile [TOP]
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: cpuprofile-summary.ts PROFILE.cpuprofile [TOP]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const maps = new Map<string, SourceMap | undefined>();
function sourceMapFor(path: string): SourceMap | undefined {
  if (!maps.has(path)) {
    const mapPath = `${path}.map`;
    maps.set(
      path,
      existsSync(mapPath)
        ? new SourceMap(JSON.parse(readFileSync(mapPath, 'utf8')) as never)
        : undefined,
    );
  }
  return maps.get(path);
}

/** Where a frame comes from, without the checkout's location. */
function area(url: string): string {
  if (url === '') return 'native and V8';
  if (url.startsWith('node:')) return 'Node.js core';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return `dependency ${url.slice(nm + 14).split('/')[0] ?? ''}`;
  if (url.includes('/dist/') || url.includes('/bin/')) return 'kube-lc-proxy';
  return 'other';
}

function describeFrame(f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return name;
  if (f.url.startsWith('node:')) return `${name} ${f.url}:${f.lineNumber + 1}`;
  const nm = f.url.lastIndexOf('/node_modules/');
  if (nm >= 0) return `${name} ${f.url.slice(nm + 14)}:${f.lineNumber + 1}`;
  const dist = f.url.lastIndexOf('/dist/');
  if (dist >= 0 && f.url.startsWith('file:')) {
    const entry = sourceMapFor(fileURLToPath(f.url))?.findEntry(f.lineNumber, f.columnNumber);
    if (entry !== undefined && 'originalSource' in entry) {
      const src = entry.originalSource.slice(entry.originalSource.lastIndexOf('/src/') + 1);
      return `${name} ${src}:${entry.originalLine + 1}`;
    }
    return `${name} ${f.url.slice(dist + 1)}:${f.lineNumber + 1}`;
  }
  return `${name} ${f.url.slice(f.url.lastIndexOf('/') + 1)}:${f.lineNumber + 1}`;
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = new Map(profile.nodes.map((n) => [n.id, describeFrame(n.callFrame)]));

const self = new Map<string, number>();
/** Self time of each function split by its caller. */
const callers = new Map<string, Map<string, number>>();
const inclusive = new Map<string, number>();
const areas = new Map<string, number>();
let total = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const node = byId.get(id) as ProfileNode;
  const key = keyOf.get(id) as string;
  if (node.callFrame.functionName === '(idle)') {
    idle += dt;
    return;
  }
  total += dt;
  self.set(key, (self.get(key) ?? 0) + dt);
  const p = parent.get(id);
  const by = callers.get(key) ?? new Map<string, number>();
  // The nearest kube-lc-proxy frame above, else the direct caller (Node defers some work, such
  // as the connect() of net.connect to an IP, to process.nextTick, which loses the caller).
  let src: number | undefined = p;
  while (src !== undefined && !/ src\//.test(keyOf.get(src) as string)) src = parent.get(src);
  const caller =
    src !== undefined
      ? (keyOf.get(src) as string)
      : p === undefined
        ? '(root)'
        : `${keyOf.get(p) as string} (no kube-lc-proxy frame above)`;
  by.set(caller, (by.get(caller) ?? 0) + dt);
  callers.set(key, by);
  areas.set(area(node.callFrame.url), (areas.get(area(node.callFrame.url)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = keyOf.get(cur) as string;
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  }
});

const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const share = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const wall = profile.endTime - profile.startTime;
console.log(
  `profile: ${(wall / 1e6).toFixed(1)} s wall, ${(total / 1e6).toFixed(1)} s busy (${((100 * total) / wall).toFixed(0)}%), ${(idle / 1e6).toFixed(1)} s idle`,
);
console.log('\nbusy time by area (self time):');
for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1]))
  console.log(`  ${share(v)} ${ms(v)}  ${k}`);
console.log(`\ntop ${top} functions by self time (share of busy time):`);
const topSelf = [...self].sort((a, b) => b[1] - a[1]);
for (const [k, v] of topSelf.slice(0, top)) console.log(`  ${share(v)} ${ms(v)}  ${k}`);
console.log('\nwhere the top 8 are called from (share of busy time):');
for (const [k] of topSelf.slice(0, 8)) {
  console.log(`  ${k}`);
  const by = [...(callers.get(k) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]);
  for (const [c, v] of by.slice(0, 4)) console.log(`    ${share(v)}  <- ${c}`);
}
console.log(`\ntop ${top} kube-lc-proxy functions by inclusive time:`);
for (const [k, v] of [...inclusive]
  .filter(([k]) => / src\//.test(k))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(`  ${share(v)} ${ms(v)}  ${k}`);
