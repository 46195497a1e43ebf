/**
 * Clients spread over many nodes: how balanced do the pods end up, per policy? Runs the model of
 * scripts/cluster-sim/model.ts (pure, seeded: the same arguments print the same tables) over the
 * topologies of issue 9 and two scale-outs, and prints Markdown tables. Skew is max/mean
 * connections per pod; medians and p90 are over the draws.
 *
 *   node_modules/.bin/node scripts/simulate-cluster.ts [--draws N] [--seed S] [--update FILE]
 *
 * `--draws N` (default 1000) runs per cell for the cluster view, 4N for random and node-local.
 *
 * `--update docs/design.md` rewrites the text between the `simulate-cluster:begin` and
 * `simulate-cluster:end` comments of that file (formatted with prettier) instead of printing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import {
  quantile,
  seededRandom,
  simulate,
  type Policy,
  type Scenario,
} from './cluster-sim/model.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const DRAWS = Number(flag('--draws') ?? 1000);
const SEED = Number(flag('--seed') ?? 9);
const UPDATE = flag('--update');
if (!Number.isInteger(DRAWS) || DRAWS < 1 || !Number.isInteger(SEED)) {
  process.stderr.write('usage: simulate-cluster.ts [--draws N] [--seed S] [--update FILE]\n');
  process.exit(2);
}

const POLICIES: readonly { readonly name: string; readonly policy: Policy }[] = [
  { name: 'random (kube-proxy)', policy: { kind: 'random' } },
  { name: 'node-local LC (today)', policy: { kind: 'node-local' } },
  ...[1, 5].flatMap((syncSeconds) =>
    (
      [
        ['2 choices', 'two-choices'],
        ['least', 'least'],
        ['herd step', 'herd-step'],
      ] as const
    ).map(([label, pick]) => ({
      name: `cluster ${syncSeconds} s, ${label}`,
      policy: { kind: 'cluster', syncSeconds, pick } as const,
    })),
  ),
];

const ARRIVAL = 10;
const SETTLED = 30;
const STATIC_ROWS = [
  [1, 100, 4],
  [50, 2, 4],
  [100, 1, 4],
  [50, 2, 10],
  [100, 1, 10],
  [200, 1, 20],
] as const;

const SCALE_AT = 20;
const AFTER = [0, 1, 2, 5, 10, 30] as const;
const SCALE_ROWS = [
  [12, 2, 4],
  [12, 3, 6],
  [100, 2, 4],
  [100, 3, 6],
] as const;

/** Random choice and node-local runs cost little: they get 4 times the draws. */
const drawsOf = (policy: Policy): number => (policy.kind === 'cluster' ? DRAWS : 4 * DRAWS);
const drawsText = `${4 * DRAWS} draws for random and node-local, ${DRAWS} for the cluster view`;

/** Runs seeded runs; each run's seed depends only on (row, policy, draw). */
function draws(policy: number, row: number, scenario: Scenario): ReturnType<typeof simulate>[] {
  const out = [];
  for (let d = 0; d < drawsOf(POLICIES[policy]!.policy); d++) {
    const seed = (SEED * 1_000_003 + row * 10_007 + policy * 101 + d * 7_919) >>> 0;
    out.push(simulate(POLICIES[policy]!.policy, scenario, seededRandom(seed)));
  }
  return out;
}

const f2 = (x: number): string => x.toFixed(2);
const median = (xs: number[]): number => quantile(xs, 0.5);
const started = Date.now();
const lines: string[] = [];

// Static topologies: one row per policy, one column per topology.
const header = `| policy | ${STATIC_ROWS.map(([n, c, p]) => `${n} × ${c}, ${p} pods`).join(' | ')} |`;
const rule = `| --- | ${STATIC_ROWS.map(() => '---').join(' | ')} |`;
const settled: string[] = [];
const early: string[] = [];
POLICIES.forEach(({ name }, p) => {
  const cells: string[] = [];
  const earlyCells: string[] = [];
  STATIC_ROWS.forEach(([nodes, perNode, pods], row) => {
    const runs = draws(p, row, {
      nodes,
      clientsPerNode: perNode,
      pods,
      arrivalSeconds: ARRIVAL,
      sampleAt: [ARRIVAL, SETTLED],
      endSeconds: SETTLED,
    });
    const end = runs.map((r) => r.samples[1]!.skew);
    cells.push(`${f2(median(end))} (${f2(quantile(end, 0.9))})`);
    const atArrival = median(runs.map((r) => r.samples[0]!.skew));
    const moves = median(runs.map((r) => r.moves / (nodes * perNode)));
    earlyCells.push(`${f2(atArrival)} / ${f2(moves)}`);
  });
  settled.push(`| ${name} | ${cells.join(' | ')} |`);
  early.push(`| ${name} | ${earlyCells.join(' | ')} |`);
});
lines.push(
  `Static: clients connect at random times over the first ${ARRIVAL} s; skew at ${SETTLED} s, ` +
    `median (p90) over ${drawsText}.`,
  '',
  header,
  rule,
  ...settled,
  '',
  `The same runs: median skew at ${ARRIVAL} s, when the last client has just connected (before ` +
    'most of the rebalance) / median moves (drains) per client by the end.',
  '',
  header,
  rule,
  ...early,
);

lines.push(
  '',
  `Scale-out: clients connect over the first ${ARRIVAL} s, the new pods are ready at ` +
    `${SCALE_AT} s. Median skew at each time after the scale-out, then median moves since the ` +
    `scale-out by +${AFTER.at(-1)} s (p90 in brackets), over ${drawsText}.`,
  '',
  `| nodes × clients, pods | policy | ${AFTER.map((a) => `+${a} s`).join(' | ')} | moves |`,
  `| --- | --- | ${AFTER.map(() => '---').join(' | ')} | --- |`,
);
SCALE_ROWS.forEach(([nodes, from, to], row) => {
  const scenario: Scenario = {
    nodes,
    clientsPerNode: 1,
    pods: from,
    scaleTo: to,
    scaleOutAt: SCALE_AT,
    arrivalSeconds: ARRIVAL,
    // A hair after each mark, so a sync at exactly that instant has been applied.
    sampleAt: AFTER.map((a) => SCALE_AT + a + 1e-6),
    endSeconds: SCALE_AT + (AFTER.at(-1) as number) + 1,
  };
  POLICIES.forEach(({ name }, p) => {
    const runs = draws(p, 100 + row, scenario);
    const skews = AFTER.map((_, i) =>
      f2(
        quantile(
          runs.map((r) => r.samples[i]!.skew),
          0.5,
        ),
      ),
    );
    const moves = runs.map((r) => r.samples.at(-1)!.moves - r.samples[0]!.moves);
    lines.push(
      `| ${nodes} × 1, ${from} → ${to} | ${name} | ${skews.join(' | ')} | ` +
        `${quantile(moves, 0.5)} (${quantile(moves, 0.9)}) |`,
    );
  });
});

const text = `${lines.join('\n')}\n`;
process.stderr.write(`simulate-cluster: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
if (UPDATE === undefined) {
  process.stdout.write(text);
} else {
  const begin = '<!-- simulate-cluster:begin -->';
  const end = '<!-- simulate-cluster:end -->';
  const doc = readFileSync(UPDATE, 'utf8');
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) {
    process.stderr.write(`simulate-cluster: ${UPDATE} has no ${begin} ... ${end} block\n`);
    process.exit(1);
  }
  // Formatted as `npm run lint` wants it (aligned tables), so the file stays lint-clean.
  const updated = `${doc.slice(0, i + begin.length)}\n\n${text}\n${doc.slice(j)}`;
  const options = (await resolveConfig(UPDATE)) ?? {};
  writeFileSync(UPDATE, await format(updated, { ...options, filepath: UPDATE }));
}
