// Recipe search: one training recipe for MtM and for the temporal baseline alike, chosen on the
// VALIDATION split of the quickstart's simulated sessions, never on test. Each point runs
// graphs/quickstart.yaml with the point's settings for both models (`--set` on the graph's params),
// the evaluation scoring the val trials and skipping behaviour decoding, one point at a time (the
// two models already fill both cores). Per point it records the val bits/spike of each task and
// model, the wall time, and the score: the mean val bps over the four tasks and both models.
// The chosen recipe is the best score among the points whose CPU time over the two cores stays inside the budget
// (the quickstart must stay a job of minutes); bps per CPU-minute is reported beside it.
// Usage: node --import tsx bench/recipe.ts [--points name,name] [--budget-s 540] [--seed 1]
// Writes bench/results/recipe.json (points already measured there are kept unless rerun).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { activityTasks, key } from '../core/eval/task-registry.ts';

const here = import.meta.dirname;
const root = join(here, '..');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};

/** A recipe: the quickstart graph's params that both models share. */
export interface Recipe {
  epochs: number;
  batchSize: number;
  learningRate: number;
  model: Record<string, number>;
  /** Extra `--set` overrides (node.param=value), applied to both samplers of a scheme where named. */
  sets?: string[];
}

const base: Recipe = { epochs: 70, batchSize: 8, learningRate: 3e-3, model: { dModel: 64, layers: 2, heads: 4 } };
const withModel = (m: Record<string, number>): Recipe => ({ ...base, model: { ...base.model, ...m } });

/** The points searched: one factor at a time around the previous default, then combinations. */
export const POINTS: Record<string, Recipe> = {
  base,
  lr1e3: { ...base, learningRate: 1e-3 },
  lr1e2: { ...base, learningRate: 1e-2 },
  batch16: { ...base, batchSize: 16 },
  batch4: { ...base, batchSize: 4 },
  epochs140: { ...base, epochs: 140 },
  epochs200: { ...base, epochs: 200 },
  epochs250: { ...base, epochs: 250 },
  batch16epochs250: { ...base, batchSize: 16, epochs: 250 },
  lr1e3epochs250: { ...base, learningRate: 1e-3, epochs: 250 },
  epochs250forecast: { ...base, epochs: 250, sets: ['causalForecast=0.5'] },
  epochs250lr1e2: { ...base, epochs: 250, learningRate: 1e-2 },
  epochs500: { ...base, epochs: 500 },
  epochs750: { ...base, epochs: 750 },
  epochs1000: { ...base, epochs: 1000 },
  d128epochs250: { ...base, epochs: 250, model: { ...base.model, dModel: 128 } },
  d128epochs500: { ...base, epochs: 500, model: { ...base.model, dModel: 128 } },
  layers4epochs250: { ...base, epochs: 250, model: { ...base.model, layers: 4 } },
  d128: withModel({ dModel: 128 }),
  d32: withModel({ dModel: 32, heads: 2 }),
  layers1: withModel({ layers: 1 }),
  layers4: withModel({ layers: 4 }),
  dropout0: withModel({ dropout: 0, embedDropout: 0 }),
  dropout04: withModel({ dropout: 0.4, embedDropout: 0.4 }),
};

interface PointResult {
  recipe: Recipe;
  seed: number;
  wallSeconds: number;
  /** User + system CPU seconds of the run (both cores): the budget is judged on this, not on wall time, so a loaded machine does not bias the choice. */
  cpuSeconds: number;
  /** Mean over sessions of each model's val bps per task. */
  valBps: Record<string, Record<string, number>>;
  score: number;
  scorePerCpuMinute: number;
  loadAverage: number[];
  measuredAt: string;
}

const TASKS = activityTasks().map((t) => key(t, 'bps'));

function setsOf(r: Recipe): string[] {
  const s = [`epochs=${r.epochs}`, `batchSize=${r.batchSize}`, `learningRate=${r.learningRate}`, `model=${JSON.stringify(r.model)}`, 'evaluate.split=val', 'evaluate.decoding=false'];
  return [...s, ...(r.sets ?? [])];
}

function runPoint(name: string, r: Recipe, seed: number): PointResult {
  const out = mkdtempSync(join(tmpdir(), `mtm-recipe-${name}-`));
  const args = ['--import', 'tsx', join(root, 'bin', 'mtm.js'), 'run', join(root, 'graphs', 'quickstart.yaml'), '--out', join(out, 'run'), '--seed', String(seed), '--log-level', 'warn'];
  for (const s of setsOf(r)) args.push('--set', s);
  const started = performance.now();
  // bash's `time` reports the child's user and system CPU seconds (Node cannot read RUSAGE_CHILDREN).
  const timed = ['-c', 'TIMEFORMAT="cpu-seconds %U %S"; time "$@"', 'bash', process.execPath, ...args];
  const p = spawnSync('bash', timed, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = /cpu-seconds ([\d.]+) ([\d.]+)\s*$/.exec(p.stderr);
  if (p.status !== 0 || !cpu) throw new Error(`recipe point ${name}: mtm run exited ${p.status}\n${p.stdout}\n${p.stderr}`);
  const cpuSeconds = Number(cpu[1]) + Number(cpu[2]);
  const metrics = readFileSync(join(out, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.node === 'evaluate');
  const valBps: Record<string, Record<string, number>> = {};
  for (const label of [...new Set(metrics.map((m) => m.label as string))]) {
    const rows = metrics.filter((m) => m.label === label);
    valBps[label] = Object.fromEntries(TASKS.map((t) => [t, rows.reduce((a, m) => a + m[t], 0) / rows.length]));
  }
  const all = Object.values(valBps).flatMap((v) => TASKS.map((t) => v[t]));
  const score = all.reduce((a, b) => a + b, 0) / all.length;
  rmSync(out, { recursive: true, force: true });
  return { recipe: r, seed, wallSeconds, cpuSeconds, valBps, score, scorePerCpuMinute: score / (cpuSeconds / 60), loadAverage: loadavg(), measuredAt: new Date().toISOString() };
}

async function main() {
  const file = join(here, 'results', 'recipe.json');
  const budgetS = Number(arg('budget-s', '540'));
  const seed = Number(arg('seed', '1'));
  const names = arg('points', Object.keys(POINTS).join(',')).split(',');
  for (const n of names) if (!POINTS[n]) throw new Error(`unknown recipe point '${n}' (known: ${Object.keys(POINTS).join(', ')})`);
  const prev = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { points: {} };
  const points: Record<string, PointResult> = prev.points ?? {};
  for (const n of names) {
    console.log(`recipe point ${n}: ${setsOf(POINTS[n]).join(' ')}`);
    points[n] = runPoint(n, POINTS[n], seed);
    const v = points[n].valBps;
    console.log(`  ${points[n].wallSeconds.toFixed(0)} s wall, ${points[n].cpuSeconds.toFixed(0)} CPU s, score ${points[n].score.toFixed(4)}: ` + Object.entries(v).map(([l, t]) => `${l} ${TASKS.map((k) => t[k].toFixed(3)).join('/')}`).join(', '));
    // The budget is an idle 2-core wall time: CPU seconds over the two cores (older points without cpuSeconds use wall).
    const within = Object.entries(points).filter(([, p]) => (p.cpuSeconds ? p.cpuSeconds / 2 : p.wallSeconds) <= budgetS);
    const best = within.sort((a, b) => b[1].score - a[1].score)[0];
    await writeFileAtomic(file, JSON.stringify({
      benchmark: 'recipe',
      what: 'one recipe for MtM and temporal masking alike (NDT1, graphs/quickstart.yaml sessions), scored on the validation split: mean val bits/spike over co-smoothing, forward prediction, intra- and inter-region and both models',
      budgetSeconds: budgetS,
      chosen: best ? best[0] : null,
      machine: { cpu: cpus()[0]?.model, cores: cpus().length },
      points,
    }, null, 2) + '\n');
  }
}

await main();
