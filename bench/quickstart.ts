// `npm run bench -- quickstart`: what the main job shows at its defaults, over several seeds.
// Runs graphs/quickstart.yaml exactly as a user would (defaults, decoding on, test split) at graph
// seeds 1-3 (each seed simulates other sessions, splits, masks and initial weights) and writes
// bench/results/quickstart.json: per seed and session each model's bits/spike on the four tasks
// beside the oracle, and the claims the science is judged by:
// - per task, on how many sessions MtM scores at or above temporal masking;
// - forward prediction above zero, per model and session;
// - MtM's co-smoothing as a fraction of the oracle, per session;
// plus each task's mean and sd over seeds (each seed's figure is the mean over its sessions, as
// the report's). Wall and CPU seconds of every run are recorded beside the machine's load.
//
// mtm-flow runs from a copy of the checkout's HEAD commit (bench/science.ts's snapshotHead).
// Usage: npm run bench -- quickstart
//        node --import tsx bench/quickstart.ts [--seeds 1,2,3] [--split test|val] [--set name=value]...
//          [--work DIR] [--out FILE] [--checkout]
// Runs already complete in --work (run.json status completed) are read, not rerun.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs as parseFlags } from 'node:util';
import YAML from 'yaml';
import { activityTasks, key } from '../core/eval/task-registry.ts';
import { snapshotHead, spread } from './science.ts';

const root = resolve(import.meta.dirname, '..');
const TASKS = activityTasks().map((t) => ({ bps: key(t, 'bps'), oracle: key(t, 'oracle_bps') }));
const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
const log = (msg: string) => console.error(`[quickstart] ${msg}`);

export interface Options {
  seeds: number[];
  split: 'test' | 'val';
  sets: string[];
  work: string;
  out: string;
  checkout: boolean;
}

export function parseArgs(argv: string[]): Options {
  const { values: v } = parseFlags({
    args: argv,
    options: { seeds: { type: 'string', default: '1,2,3' }, split: { type: 'string', default: 'test' }, set: { type: 'string', multiple: true, default: [] }, work: { type: 'string', default: '' }, out: { type: 'string', default: '' }, checkout: { type: 'boolean', default: false } },
  });
  const seeds = v.seeds.split(',').map(Number);
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds must be non-negative integers, got ${v.seeds}`);
  if (v.split !== 'test' && v.split !== 'val') throw new Error(`--split must be test or val, got ${v.split}`);
  return { seeds, split: v.split, sets: v.set, work: v.work, out: v.out, checkout: v.checkout };
}

/** One evaluate row of metrics.jsonl: a model on a session. */
export interface EvalRow {
  sessionId: string;
  label: string;
  [metric: string]: unknown;
}

/** Per task, the claims over every (seed, session): MtM at or above temporal, forecasts above zero, MtM's share of the oracle. */
export function claims(runs: { seed: number; rows: EvalRow[] }[], a = 'mtm', b = 'temporal') {
  const pairs = runs.flatMap((r) => [...new Set(r.rows.map((x) => x.sessionId))].map((s) => ({ seed: r.seed, session: s, a: r.rows.find((x) => x.sessionId === s && x.label === a), b: r.rows.find((x) => x.sessionId === s && x.label === b) })));
  const complete = pairs.filter((p) => p.a && p.b);
  const num = (row: EvalRow | undefined, k: string) => (typeof row?.[k] === 'number' ? (row[k] as number) : NaN);
  const perTask = Object.fromEntries(TASKS.map((t) => {
    const gaps = complete.map((p) => num(p.a, t.bps) - num(p.b, t.bps));
    return [t.bps, { sessions: complete.length, aAtOrAbove: gaps.filter((g) => g >= 0).length, gap: spread(gaps) }];
  }));
  const fwd = TASKS.find((t) => t.bps.startsWith('forward'))!.bps;
  const cos = TASKS.find((t) => t.bps.startsWith('co_smoothing'))!;
  return {
    models: [a, b],
    perTask,
    aAtOrAboveOnEveryTaskAndSession: complete.length > 0 && Object.values(perTask).every((t) => t.aAtOrAbove === t.sessions),
    forwardAboveZero: Object.fromEntries([a, b].map((l) => {
      const v = complete.map((p) => num(l === a ? p.a : p.b, fwd));
      return [l, { sessions: v.length, aboveZero: v.filter((x) => x > 0).length }];
    })),
    coSmoothingShareOfOracle: complete.map((p) => ({ seed: p.seed, session: p.session, share: round(num(p.a, cos.bps) / num(p.a, cos.oracle), 3) })),
  };
}

/** Per label and task, the spread over seeds of the mean over sessions. */
export function bySeed(runs: { rows: EvalRow[] }[]) {
  const labels = [...new Set(runs.flatMap((r) => r.rows.map((x) => x.label)))];
  const mean = (rows: EvalRow[], k: string) => rows.reduce((s, x) => s + (x[k] as number), 0) / rows.length;
  return Object.fromEntries(labels.map((l) => [l, Object.fromEntries(TASKS.flatMap((t) => [t.bps, t.oracle]).map((k) => [k, spread(runs.map((r) => mean(r.rows.filter((x) => x.label === l), k)))]))]));
}

function runQuickstart(src: string, dir: string, seed: number, o: Options): { wallS: number; cpuS: number; reused: boolean } {
  const info = join(dir, 'run.json');
  if (existsSync(info) && JSON.parse(readFileSync(info, 'utf8')).status === 'completed') return { wallS: NaN, cpuS: NaN, reused: true };
  const sets = [...(o.split === 'val' ? ['evaluate.split=val'] : []), ...o.sets];
  const args = [join(src, 'bin', 'mtm.js'), 'run', join(src, 'graphs', 'quickstart.yaml'), '--out', dir, '--seed', String(seed), ...sets.flatMap((s) => ['--set', s])];
  log(`seed ${seed}: node ${args.join(' ')}`);
  const t0 = performance.now();
  // bash's `time` gives the child's user + system CPU seconds (Node cannot read RUSAGE_CHILDREN).
  const r = spawnSync('bash', ['-c', 'TIMEFORMAT="cpu-seconds %U %S"; time "$@"', 'bash', process.execPath, ...args], { cwd: src, env: { ...process.env, CI: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench-stderr.log'), r.stderr ?? '');
  const cpu = /cpu-seconds ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0 || !cpu) throw new Error(`mtm run quickstart (seed ${seed}) exited with ${r.status}; see ${join(dir, 'bench-stderr.log')}:\n${(r.stderr ?? '').slice(-3000)}`);
  return { wallS: (performance.now() - t0) / 1000, cpuS: Number(cpu[1]) + Number(cpu[2]), reused: false };
}

function readRows(dir: string): EvalRow[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.node === 'evaluate' && typeof m.label === 'string');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const work = o.work ? resolve(o.work) : mkdtempSync(join(tmpdir(), 'mtm-quickstart-bench-'));
  let src = root;
  let commit = 'working tree';
  if (!o.checkout) {
    src = join(work, 'mtm-flow-src');
    if (!existsSync(join(src, 'SNAPSHOT'))) snapshotHead(src);
    commit = readFileSync(join(src, 'SNAPSHOT'), 'utf8').trim();
  }
  log(`work folder ${work}; mtm-flow ${commit} from ${src}`);
  const loads: number[][] = [loadavg()];
  const runs: { seed: number; wallS: number; cpuS: number; reused: boolean; rows: EvalRow[] }[] = [];
  for (const seed of o.seeds) {
    const dir = join(work, `seed${seed}`);
    const t = runQuickstart(src, dir, seed, o);
    loads.push(loadavg());
    const rows = readRows(dir);
    runs.push({ seed, ...t, rows });
    log(`seed ${seed}: ${t.reused ? 'reused' : `${t.wallS.toFixed(0)} s wall, ${t.cpuS.toFixed(0)} CPU s`}; ` + rows.map((x) => `${x.label} ${String(x.sessionId).slice(0, 8)} ${TASKS.map((k) => (x[k.bps] as number).toFixed(3)).join('/')}`).join(', '));
  }
  const resolved = YAML.parse(readFileSync(join(work, `seed${o.seeds[0]}`, 'graph.resolved.yaml'), 'utf8')) as { params?: Record<string, unknown> };
  const result = {
    benchmark: 'quickstart',
    what: `graphs/quickstart.yaml at its defaults${o.sets.length ? ` with ${o.sets.join(' ')}` : ''}, graph seeds ${o.seeds.join(', ')}, ${o.split} split: per-neuron mean bits/spike per model and session`,
    split: o.split,
    commit,
    recipe: resolved.params ?? {},
    sets: o.sets,
    claims: claims(runs),
    bySeed: bySeed(runs),
    runs: runs.map((r) => ({ seed: r.seed, wallSeconds: round(r.wallS, 1), cpuSeconds: round(r.cpuS, 1), reused: r.reused, sessions: r.rows.map((x) => ({ sessionId: x.sessionId, label: x.label, ...Object.fromEntries(TASKS.flatMap((t) => [[t.bps, round(x[t.bps] as number)], [t.oracle, round(x[t.oracle] as number)]])) })) })),
    machine: { cpuModel: cpus()[0]?.model.trim() ?? 'unknown', cores: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version },
    loadAverage1m: loads.map((l) => round(l[0], 2)),
    measuredAt: new Date().toISOString(),
  };
  const out = o.out || join(root, 'bench', 'results', o.split === 'val' ? 'quickstart-val.json' : 'quickstart.json');
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  const c = result.claims;
  for (const [k, t] of Object.entries(c.perTask)) log(`${k}: MtM at or above temporal on ${t.aAtOrAbove}/${t.sessions} sessions, gap ${t.gap.mean.toFixed(3)} ± ${t.gap.sd.toFixed(3)}`);
  log(`wrote ${out}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
