// The report, sweep and evaluation outputs for the built-in tasks, byte for byte against files
// rendered before the task registry (core/eval/task-registry.ts) replaced the keys spelled out in
// each module. Metric keys here are written out by hand on purpose: the fixture must not follow
// the registry. UPDATE_GOLDEN=1 rewrites the files (only for an intended change of the outputs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact, BinnedSession, Metrics, ModelRef, Split } from '../core/payloads.ts';
import { runStage, tempDir, testContext } from '../core/testing.ts';
import { EVAL_DETAIL_FORMAT, evalDetailFileName, writeEvalDetail } from '../core/report/detail.ts';
import { buildSweep, sweepMarkdown } from '../core/report/sweep.ts';
import { createRng } from '../core/rng.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { saveModelFolder } from '../core/train/checkpoint.ts';
import { readParquet } from '../core/io/parquet.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { report, type ReportRef } from '../stages/report.ts';
import { evaluate, evaluateParams } from '../stages/evaluate.ts';

await initBackend();

const GOLDEN = join(import.meta.dirname, 'fixtures', 'report-golden');
const update = process.env.UPDATE_GOLDEN === '1';

function golden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (update) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `${file} is missing (UPDATE_GOLDEN=1 writes it)`);
  assert.fixture(actual, readFileSync(file, 'utf8'));
}

const STEMS = ['co_smoothing', 'forward_prediction', 'inter_region', 'intra_region'];
const LABELS = ['mtm', 'temporal'];
const SESSIONS = ['sessA', 'sessB'];

/** Evaluation items with every key the evaluator writes, plus training epochs and an unknown key. */
function metrics(): Metrics[] {
  const items: Metrics[] = [];
  LABELS.forEach((label, li) => {
    for (let e = 1; e <= 2; e++) items.push({ kind: 'metrics', sessionId: 'all', label, values: { epoch: e, step: 5 * e, trainLoss: 0.5 / e, valLoss: 0.6 / e, lr: 1e-3, seconds: 1.25, best: e === 2 ? 1 : 0 } });
    SESSIONS.forEach((sessionId, si) => {
      const up = 0.031 * (1 - li) + 0.007 * si;
      const v: Record<string, number> = { test_trials: 6, neurons: 5, left_out_neurons: 5 };
      STEMS.forEach((t, ti) => {
        v[`${t}_seconds`] = 0.5 + ti;
        v[`${t}_bps`] = 0.1 + 0.013 * ti + up;
        v[`${t}_bps_pooled`] = 0.12 + 0.011 * ti + up;
        Object.assign(v, { [`${t}_evaluated`]: 4, [`${t}_excluded`]: 1, [`${t}_silent`]: 1 - si, [`${t}_unscored`]: si });
        ['q10', 'q25', 'q50', 'q75', 'q90'].forEach((q, qi) => (v[`${t}_bps_${q}`] = -0.2 + 0.1 * qi + up));
        v[`${t}_oracle_bps`] = 0.3 + 0.01 * si;
        v[`${t}_oracle_bps_pooled`] = 0.33;
        if (ti !== 2) v[`${t}_oracle_ratio`] = v[`${t}_bps`] / v[`${t}_oracle_bps`]; // inter_region's ratio is computed by the report
      });
      Object.assign(v, { choice_accuracy: 0.7 + up, choice_chance: 0.55, wheel_r2: 0.1 + up, behaviour_seconds: 3, evaluate_seconds: 9, extra_figure: 1.5 });
      if (li === 0 || si === 0) v.wme_r2 = 0.2 + up;
      items.push({ kind: 'metrics', sessionId, label, values: v });
    });
  });
  return items;
}

async function details(dir: string): Promise<Artifact[]> {
  const regions = ['CA1', 'CA1', 'LP', 'LP', 'LP'];
  const grid = (f: (n: number, b: number) => number) => regions.map((_, n) => Array.from({ length: 6 }, (_, b) => f(n, b)));
  for (const sessionId of SESSIONS) {
    for (const [li, label] of LABELS.entries()) {
      await writeEvalDetail(join(dir, evalDetailFileName(sessionId, label)), {
        format: EVAL_DETAIL_FORMAT, sessionId, label, binSizeMs: 20, regions,
        perNeuronBps: Object.fromEntries(STEMS.map((t, ti) => [t, regions.map((_, n) => (n === 0 ? null : 0.04 * n - 0.03 * li + 0.01 * ti))])),
        perNeuronOracleBps: Object.fromEntries(STEMS.map((t) => [t, regions.map((_, n) => (n === 0 ? null : 0.05 * n + 0.1))])),
        raster: { task: 'co_smoothing', trials: 6, windowStartS: -0.1, observed: grid((n, b) => 0.1 * (n + 1) + 0.01 * b), predicted: grid((n) => 0.1 * (n + 1)), trueRates: grid((n, b) => 0.1 * (n + 1) + 0.009 * b) },
      });
    }
  }
  return [{ kind: 'artifact', path: dir, description: 'evaluation folder' }];
}

test('report stage: report.md, report.json and the plots are unchanged', async () => {
  const root = tempDir();
  const out = await runStage(report, { outDir: 'report', png: false, order: ['temporal'] }, { metrics: metrics(), details: await details(tempDir()) }, testContext('report', 1, root));
  const dir = (out.report[0] as ReportRef).path;
  golden('report.md', readFileSync(join(dir, 'report.md'), 'utf8'));
  const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  Object.assign(json, { createdAt: 'fixed', backend: 'fixed' });
  json.timings.reportSeconds = 0;
  golden('report.json', JSON.stringify(json, null, 2) + '\n');
  const svgs = readdirSync(dir).filter((f) => f.endsWith('.svg')).sort();
  golden('report-plots.txt', svgs.join('\n') + '\n');
  for (const f of ['bps-summary.svg', 'per-neuron-bps.svg']) golden(f, readFileSync(join(dir, f), 'utf8'));
});

test('sweep: sweep.json data and sweep.md are unchanged', () => {
  const items: Metrics[] = [];
  for (const m of metrics()) {
    if (m.sessionId === 'all') continue;
    for (const n of [1, 4]) items.push({ ...m, label: `${m.label}-n${n}`, values: Object.fromEntries(Object.entries(m.values).map(([k, v]) => [k, k.endsWith('_bps') || k.endsWith('_r2') ? v + 0.01 * n : v])) });
  }
  const d = buildSweep(items, { xTitle: 'sessions' });
  golden('sweep.json', JSON.stringify(d, null, 2) + '\n');
  golden('sweep.md', sweepMarkdown(d, { title: 'Sweep', plots: [['every metric', 'sweep.svg']], notes: [] }));
});

// ---------------------------------------------------------------------------------------------
// The evaluator's keys: which figures, in which order, in which files (not the numbers, which
// follow the tensor backend).

const T = 6;
const REGIONS = ['CA1', 'LP', 'CA1', 'VISp', 'LP'];
const N = REGIONS.length;

function session(): BinnedSession {
  const rng = createRng(5);
  const nTrials = 20;
  const TN = T * N;
  const trueRates = Float32Array.from({ length: nTrials * TN }, (_, i) => Math.exp(1.5 * Math.sin(0.9 * i)));
  const counts = Int32Array.from(trueRates, (r) => rng.poisson(r));
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 4 === 3 ? 'test' : 'train'));
  return {
    kind: 'binned-session', sessionId: 's1', binSizeMs: 20, windowS: [0, T * 0.02], nTrials, nBins: T, nNeurons: N, counts,
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: { choice: Float64Array.from({ length: nTrials }, (_, r) => (r % 2 ? 1 : -1)) } },
    neurons: REGIONS.map((a, i) => ({ probe: 'probe00', clusterId: i, atlasId: -1, acronym: a, beryl: a, cosmos: a, depthUm: 0, good: true })),
    perBin: { wheelSpeed: Float32Array.from({ length: nTrials * T }, () => rng.normal()), whiskerMotionEnergy: Float32Array.from({ length: nTrials * T }, () => rng.normal()) },
    trueRates,
  };
}

/** Keys of a JSON value, nested, with the type at each leaf (arrays by their first element). */
function shape(x: unknown): unknown {
  if (Array.isArray(x)) return x.length ? [shape(x[0])] : [];
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, shape(v)]));
  return x === null ? 'null' : typeof x;
}

test('evaluate: metric keys in order, evaluation.json, per-neuron columns, files and params are unchanged', async () => {
  const model = ndt1Architecture.build({ dModel: 8, layers: 1, heads: 2, mlpDim: 16, maxBins: T }, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 1 });
  const path = join(tempDir(), 'best');
  await saveModelFolder(path, model, { sessions: model.sessions() });
  const ref: ModelRef = { kind: 'model', path, architecture: 'ndt1', config: model.config, sessions: model.sessions(), label: 'mtm', epoch: 1, score: 1, scoreOn: 'val', trainLoss: 1 };
  model.dispose();
  const ctx = { ...testContext('evaluate'), architectures: new Map([['ndt1', ndt1Architecture]]) };
  const out = await runStage(evaluate, { batchSize: 16, forwardPredictionBins: 2, decodingFolds: 2, decodingLambdas: [1] }, { model: [ref], sessions: [session()] }, ctx);
  const m = out.metrics[0] as Metrics;
  const dir = (out.artifacts[0] as Artifact).path;
  const summary = JSON.parse(readFileSync(join(dir, 'evaluation.json'), 'utf8'));
  const detail = JSON.parse(readFileSync(join(dir, evalDetailFileName('s1', 'mtm')), 'utf8'));
  const table = await readParquet(join(dir, 'per-neuron.parquet'));
  const params = Object.entries(evaluateParams.shape).map(([k, f]) => ({ key: k, description: (f as { description?: string }).description }));
  golden('evaluate-keys.json', JSON.stringify({
    metricKeys: Object.keys(m.values),
    metricsJsonlKeys: Object.keys(JSON.parse(readFileSync(join(ctx.run.root, 'metrics.jsonl'), 'utf8').trim().split('\n')[0])),
    evaluationJson: shape({ ...summary, metrics: Object.keys(summary.metrics), notes: summary.notes }),
    perNeuronColumns: table.columnNames,
    detail: shape(detail),
    rasterTask: detail.raster.task,
    files: readdirSync(dir).sort(),
    defaults: evaluateParams.parse({}),
    params,
    stage: { summary: evaluate.summary, outputs: evaluate.outputs },
  }, null, 2) + '\n');
});

test.run();
