// `npm run bench -- pretraining`: does pretraining help held-out sessions, beyond seed-to-seed
// noise? Runs graphs/scaling.yaml and graphs/fewshot.yaml with their defaults at several graph
// seeds (each seed simulates other pretraining sessions, splits, masks and initial weights; the
// held-out sessions stay those of the graph's heldOutSeed) and writes
// bench/results/pretraining.json: per model label and metric the mean over seeds, its sample
// standard deviation, and the paired per-seed differences the claims are about:
// - scaling: every fine-tuned model's held-out co-smoothing, and MtM pretrained on the largest
//   set minus MtM trained on the held-out sessions alone (x = 0), per seed;
// - few-shot: pretrained minus scratch at each k.
// A claim holds when the mean difference is above zero by more than the differences' own
// seed-to-seed sd (paired: both models of a seed share the data).
//
// mtm-flow runs from a copy of the checkout's HEAD commit (bench/science.ts's snapshotHead).
// Usage: npm run bench -- pretraining
//        node --import tsx bench/pretraining.ts [--seeds 1,2,3] [--graphs scaling,fewshot]
//          [--split test|val] [--set name=value]... [--work DIR] [--out FILE] [--checkout]
// --split val scores the validation trials (what recipes are chosen on); the JSON says which.
// Runs already complete in --work (run.json status completed) are read, not rerun, so an
// interrupted bench resumes where it stopped.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { snapshotHead, spread, type Spread } from './science.ts';

const root = resolve(import.meta.dirname, '..');
const METRICS = ['co_smoothing_bps', 'forward_prediction_bps', 'intra_region_bps', 'inter_region_bps'] as const;
const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
const log = (msg: string) => console.error(`[pretraining] ${msg}`);

interface Options {
  seeds: number[];
  graphs: string[];
  split: 'test' | 'val';
  sets: string[];
  work: string;
  out: string;
  checkout: boolean;
}

export function parseArgs(argv: string[]): Options {
  const o: Options = { seeds: [1, 2, 3], graphs: ['scaling', 'fewshot'], split: 'test', sets: [], work: '', out: '', checkout: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--seeds') o.seeds = next().split(',').map(Number);
    else if (a === '--graphs') o.graphs = next().split(',');
    else if (a === '--split') {
      const s = next();
      if (s !== 'test' && s !== 'val') throw new Error(`--split must be test or val, got ${s}`);
      o.split = s;
    } else if (a === '--set') o.sets.push(next());
    else if (a === '--work') o.work = next();
    else if (a === '--out') o.out = next();
    else if (a === '--checkout') o.checkout = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.seeds.length || o.seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds must be non-negative integers, got ${o.seeds.join(',')}`);
  for (const g of o.graphs) if (g !== 'scaling' && g !== 'fewshot') throw new Error(`--graphs takes scaling and/or fewshot, got ${g}`);
  return o;
}

/** One sweep point of a run, as sweep-report wrote it. */
interface SweepPoint {
  series: string;
  x: number | string;
  label: string;
  values: Record<string, { mean: number; perSession: Record<string, number> }>;
}

function runGraph(src: string, graph: string, dir: string, seed: number, o: Options): { wallS: number; reused: boolean } {
  const info = join(dir, 'run.json');
  if (existsSync(info) && JSON.parse(readFileSync(info, 'utf8')).status === 'completed') return { wallS: NaN, reused: true };
  const sets = [...(o.split === 'val' ? ['evaluate.split=val'] : []), ...o.sets];
  const args = [join(src, 'bin', 'mtm.js'), 'run', join(src, 'graphs', `${graph}.yaml`), '--out', dir, '--seed', String(seed), ...sets.flatMap((s) => ['--set', s])];
  log(`${graph} seed ${seed}: node ${args.join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: src, env: { ...process.env, CI: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench-stderr.log'), r.stderr ?? '');
  if (r.status !== 0) throw new Error(`mtm run ${graph} (seed ${seed}) exited with ${r.status}; see ${join(dir, 'bench-stderr.log')}:\n${(r.stderr ?? '').slice(-3000)}`);
  return { wallS: (performance.now() - t0) / 1000, reused: false };
}

function readPoints(dir: string): SweepPoint[] {
  return (JSON.parse(readFileSync(join(dir, 'sweep', 'sweep.json'), 'utf8')) as { points: SweepPoint[] }).points;
}

/** Per label and metric, the spread over seeds of the held-out mean. */
export function byLabel(runs: SweepPoint[][]): Record<string, Record<string, Spread>> {
  const out: Record<string, Record<string, Spread>> = {};
  const labels = [...new Set(runs.flatMap((r) => r.map((p) => p.label)))];
  for (const label of labels) {
    out[label] = {};
    for (const m of METRICS) out[label][m] = spread(runs.map((r) => r.find((p) => p.label === label)?.values[m]?.mean ?? NaN));
  }
  return out;
}

/** Paired differences a - b per seed on one metric, and whether their mean clears their sd. */
export function pairedGap(runs: SweepPoint[][], a: string, b: string, metric: string) {
  const d = runs.map((r) => (r.find((p) => p.label === a)?.values[metric]?.mean ?? NaN) - (r.find((p) => p.label === b)?.values[metric]?.mean ?? NaN));
  const s = spread(d);
  return { a, b, metric, difference: s, aheadBeyondSpread: s.n > 1 ? s.mean > s.sd : s.mean > 0, aheadEverySeed: s.values.length > 0 && s.values.every((x) => x > 0) };
}

/** The claims of each graph, from its points over seeds. */
export function claims(graph: string, runs: SweepPoint[][], params: Record<string, unknown>) {
  const first = runs[0] ?? [];
  if (graph === 'scaling') {
    const large = String(params.large);
    const fineTuned = first.filter((p) => String(p.x) !== '0').map((p) => p.label);
    return {
      mtmLargeVsScratch: pairedGap(runs, `mtm-n${large}`, 'mtm-n0', 'co_smoothing_bps'),
      temporalLargeVsScratch: pairedGap(runs, `temporal-n${large}`, 'temporal-n0', 'co_smoothing_bps'),
      fineTunedAboveZero: Object.fromEntries(fineTuned.map((l) => {
        const s = spread(runs.map((r) => r.find((p) => p.label === l)?.values.co_smoothing_bps?.mean ?? NaN));
        return [l, { mean: s.mean, min: s.min, aboveZeroEverySeed: s.min > 0 }];
      })),
    };
  }
  const ks = [...new Set(first.map((p) => String(p.x)))];
  return Object.fromEntries(ks.map((k) => [`k${k}`, Object.fromEntries(METRICS.map((m) => [m, pairedGap(runs, `pretrained-k${k}`, `scratch-k${k}`, m)]))]));
}

function machine() {
  const c = cpus();
  return { cpuModel: c[0]?.model.trim() ?? 'unknown', cores: c.length, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  // Sampled around each run: the runs are synchronous, so a timer would never fire.
  const loads: number[][] = [loadavg()];
  const work = o.work || mkdtempSync(join(tmpdir(), 'mtm-pretraining-'));
  mkdirSync(work, { recursive: true });
  let src = root;
  let commit = 'the checkout as it is (--checkout)';
  if (!o.checkout) {
    src = join(work, 'mtm-flow-src');
    if (!existsSync(join(src, 'SNAPSHOT'))) snapshotHead(src);
    commit = readFileSync(join(src, 'SNAPSHOT'), 'utf8').trim();
  }
  log(`work folder ${work}; seeds ${o.seeds.join(', ')}; ${o.split} split; mtm-flow from ${commit}`);
  const results: Record<string, unknown> = {};
  for (const graph of o.graphs) {
    const params = (YAML.parse(readFileSync(join(src, 'graphs', `${graph}.yaml`), 'utf8')) as { params: Record<string, unknown> }).params;
    for (const s of o.sets) {
      const [k, v] = [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)];
      if (k in params) params[k] = YAML.parse(v);
    }
    const runs: SweepPoint[][] = [];
    const wall: Record<string, number | null> = {};
    for (const seed of o.seeds) {
      const dir = join(work, `${graph}-seed-${seed}`);
      const r = runGraph(src, graph, dir, seed, o);
      loads.push(loadavg());
      wall[`seed${seed}`] = r.reused ? null : round(r.wallS, 1);
      runs.push(readPoints(dir));
      log(`${graph} seed ${seed}${r.reused ? ' (read from an earlier run)' : `: ${round(r.wallS, 1)} s`}: ${runs.at(-1)!.map((p) => `${p.label} ${round(p.values.co_smoothing_bps?.mean ?? NaN, 3)}`).join(', ')}`);
    }
    results[graph] = { graph: `graphs/${graph}.yaml`, params, byLabel: byLabel(runs), claims: claims(graph, runs, params), wallS: wall };
  }
  const out = o.out || join(root, 'bench', 'results', 'pretraining.json');
  const json = {
    benchmark: 'pretraining',
    about: 'graphs/scaling.yaml and graphs/fewshot.yaml at several graph seeds: per model the held-out mean of each bits/spike task over seeds (mean, sample sd), and paired per-seed differences (pretrained minus trained from scratch). aheadBeyondSpread: the mean difference exceeds its own sd over seeds.',
    createdAt: new Date().toISOString(),
    split: o.split,
    seeds: o.seeds,
    sets: o.sets,
    mtmFlow: { ranFrom: commit },
    results,
    machine: machine(),
    load: { samples: loads.length, max1min: round(Math.max(...loads.map((l) => l[0])), 2), mean1min: round(loads.reduce((a, l) => a + l[0], 0) / loads.length, 2) },
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${out}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
