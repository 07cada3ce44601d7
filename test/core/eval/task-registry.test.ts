// The task registry: a task registered here, and nowhere else, flows into the evaluation's keys
// and files, the report's tables, the detail files and the sweep. Only the registry is imported
// statically: every other module reads it when it loads, so they are imported after the toy
// tasks are registered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact, BinnedSession, Metrics, ModelRef, Split } from '../../../core/payloads.ts';
import type { ReportRef } from '../../../stages/report.ts';
import { activityTasks, decodingTasks, metricsOf, registerTask } from '../../../core/eval/task-registry.ts';

/** A toy activity task: the first bin of every neuron zeroed and scored. */
registerTask({
  kind: 'activity', id: 'firstBin', stem: 'first_bin', title: 'first bin', prose: 'first-bin prediction', defaultPrompt: 'temporal', reportOrder: 5, oracle: true, needs: {},
  plan: ({ nBins, regions }) => {
    const m = new Uint8Array(nBins * regions.length).fill(1, 0, regions.length);
    return { count: 1, mask: () => ({ masked: m, scored: m }) };
  },
});
/** A toy decoding target: report side only (its decoder would live in core/eval/behaviour.ts). */
registerTask({ kind: 'decoding', id: 'pupilDiameter', stem: 'pupil', score: 'r2', chance: false, title: 'pupil diameter R²', tableTitle: 'pupil diameter R²', always: false, swept: true, needs: { perBin: 'pupilDiameter' } });

// Refusals, tried now: uvu runs the tests after every import below has read (and sealed) the registry.
const refused = (f: () => void) => {
  try {
    f();
    return 'not refused';
  } catch (e) {
    return (e as Error).message;
  }
};
const toy = { kind: 'activity', title: 't', prose: 't', defaultPrompt: 'temporal', reportOrder: 9, oracle: false, needs: {}, plan: () => ({ count: 0, mask: () => ({ masked: new Uint8Array(), scored: new Uint8Array() }) }) } as const;
const refusals = [
  refused(() => registerTask({ ...toy, id: 'coSmoothing', stem: 'other' })),
  refused(() => registerTask({ ...toy, id: 'other', stem: 'first_bin' })),
  refused(() => registerTask({ ...toy, id: 'Bad-id', stem: 'bad' })),
  refused(() => registerTask({ ...toy, id: 'noPlan', stem: 'no_plan', plan: undefined })),
];

test('registration refuses a taken id or stem, a malformed one, and an activity task without a plan', () => {
  [/already used by 'coSmoothing'/, /already used by 'firstBin'/, /camelCase/, /needs its own plan/].forEach((re, i) => assert.match(refusals[i], re));
});

const { initBackend } = await import('../../../core/tensor/backend.ts');
const { createRng } = await import('../../../core/rng.ts');
const { runStage, tempDir, testContext } = await import('../../../core/testing.ts');
const { saveModelFolder } = await import('../../../core/train/checkpoint.ts');
const { readParquet } = await import('../../../core/io/parquet.ts');
const { ndt1Architecture } = await import('../../../plugins/ndt1/architecture.ts');
const { BEHAVIOUR_TARGETS } = await import('../../../core/eval/behaviour.ts');
const { EVAL_TASKS, TASK_METRIC } = await import('../../../core/eval/tasks.ts');
const { evaluate, evaluateParams } = await import('../../../stages/evaluate.ts');
const { report } = await import('../../../stages/report.ts');
const { CORE_KEYS, COMPARISON_KEYS, OPTIONAL_KEYS, TASKS } = await import('../../../core/report/summary.ts');
const { buildSweep, DEFAULT_SWEEP_METRICS } = await import('../../../core/report/sweep.ts');
await initBackend();

test('a registration after the registry was read is refused', () => {
  assert.throws(() => registerTask({ kind: 'decoding', id: 'late', stem: 'late', score: 'r2', chance: false, title: 'l', tableTitle: 'l', always: false, swept: false, needs: {} }), /already read/);
});

test('the built-in tasks: evaluation order, report order, the decoders behaviour.ts implements, every key explained', () => {
  assert.equal(EVAL_TASKS, ['coSmoothing', 'forwardPrediction', 'interRegion', 'intraRegion', 'firstBin']);
  assert.equal(TASKS, ['co_smoothing', 'forward_prediction', 'intra_region', 'inter_region', 'first_bin']);
  assert.equal(decodingTasks().map((d) => d.id).slice(0, -1), [...BEHAVIOUR_TARGETS]);
  assert.is(TASK_METRIC.firstBin, 'first_bin');
  for (const t of [...activityTasks(), ...decodingTasks()]) {
    for (const m of metricsOf(t)) assert.ok(m.meaning && m.unit && m.key.startsWith(`${t.stem}_`), `${m.key}: ${m.meaning} (${m.unit})`);
  }
  const co = metricsOf(activityTasks()[0]);
  assert.ok(co.some((m) => m.key === 'co_smoothing_oracle_ratio_pooled' && m.higherIsBetter === true));
  assert.ok(co.some((m) => m.key === 'co_smoothing_silent' && m.higherIsBetter === null));
  assert.equal(metricsOf(decodingTasks()[0]).map((m) => m.key), ['choice_accuracy', 'choice_chance']);
});

test('the report and sweep key lists pick the toy tasks up from the registry alone', () => {
  assert.ok(CORE_KEYS.includes('first_bin_bps') && CORE_KEYS.includes('first_bin_bps_pooled'));
  assert.ok(OPTIONAL_KEYS.includes('pupil_r2') && OPTIONAL_KEYS.includes('first_bin_oracle_ratio'));
  assert.ok(['first_bin_bps', 'first_bin_bps_q50', 'first_bin_bps_pooled', 'pupil_r2'].every((k) => COMPARISON_KEYS.includes(k)));
  assert.ok(DEFAULT_SWEEP_METRICS.includes('first_bin_bps') && DEFAULT_SWEEP_METRICS.includes('pupil_r2'));
  const p = evaluateParams.parse({});
  assert.ok(p.tasks.includes('firstBin'));
  assert.is(p.firstBinPrompt, 'temporal');
  assert.match((evaluateParams.shape as Record<string, { description?: string }>).firstBinPrompt.description!, /first-bin prediction/);
});

const T = 6;
const REGIONS = ['CA1', 'LP', 'CA1', 'LP'];
const N = REGIONS.length;

function session(): BinnedSession {
  const rng = createRng(2);
  const nTrials = 16;
  const trueRates = Float32Array.from({ length: nTrials * T * N }, (_, i) => Math.exp(1.5 * Math.sin(0.9 * i)));
  const split: Split[] = Array.from({ length: nTrials }, (_, r) => (r % 4 === 3 ? 'test' : 'train'));
  return {
    kind: 'binned-session', sessionId: 's1', binSizeMs: 20, windowS: [0, T * 0.02], nTrials, nBins: T, nNeurons: N, counts: Int32Array.from(trueRates, (r) => rng.poisson(r)),
    trials: { trialIndex: Int32Array.from({ length: nTrials }, (_, i) => i), split, columns: {} },
    neurons: REGIONS.map((a, i) => ({ probe: 'probe00', clusterId: i, atlasId: -1, acronym: a, beryl: a, cosmos: a, depthUm: 0, good: true })),
    perBin: {}, trueRates,
  };
}

async function evaluated(): Promise<{ m: Metrics; dir: string }> {
  const model = ndt1Architecture.build({ dModel: 8, layers: 1, heads: 2, mlpDim: 16, maxBins: T }, { sessions: [{ sessionId: 's1', nNeurons: N, nBins: T }], seed: 1 });
  const path = join(tempDir(), 'best');
  await saveModelFolder(path, model, { sessions: model.sessions() });
  const ref: ModelRef = { kind: 'model', path, architecture: 'ndt1', config: model.config, sessions: model.sessions(), label: 'mtm', epoch: 1, score: 1, scoreOn: 'val', trainLoss: 1 };
  model.dispose();
  const ctx = { ...testContext('evaluate'), architectures: new Map([['ndt1', ndt1Architecture]]) };
  const out = await runStage(evaluate, { batchSize: 16, forwardPredictionBins: 2, decoding: false }, { model: [ref], sessions: [session()] }, ctx);
  return { m: out.metrics[0] as Metrics, dir: (out.artifacts[0] as Artifact).path };
}

test('a registered task runs in evaluate: its keys after the built-in ones, oracle, per-neuron column, predictions, detail file, evaluation.json', async () => {
  const { m, dir } = await evaluated();
  const keys = Object.keys(m.values);
  for (const s of ['seconds', 'bps', 'bps_pooled', 'evaluated', 'excluded', 'silent', 'unscored', 'bps_q50', 'oracle_bps', 'oracle_bps_pooled']) assert.ok(keys.includes(`first_bin_${s}`), s);
  assert.ok(keys.indexOf('first_bin_seconds') > keys.indexOf('intra_region_bps'), 'registry order: after the built-in tasks');
  assert.is(m.values.first_bin_evaluated + m.values.first_bin_excluded, N);
  const summary = JSON.parse(readFileSync(join(dir, 'evaluation.json'), 'utf8'));
  assert.is(summary.tasks.firstBin.mode, 'temporal');
  assert.ok((await readParquet(join(dir, 'per-neuron.parquet'))).columnNames.includes('first_bin_oracle_bps'));
  assert.ok(existsSync(join(dir, 'predictions-first-bin.npy')));
  const detail = JSON.parse(readFileSync(join(dir, 's1.mtm.eval-detail.json'), 'utf8'));
  assert.is(detail.perNeuronBps.first_bin.length, N);

  // The report reads it with the detail file, and a toy decoding figure beside it.
  const root = tempDir();
  const items = [m, { ...m, label: 'temporal', values: { ...m.values, first_bin_bps: m.values.first_bin_bps - 0.1, pupil_r2: 0.2 } }, { ...m, values: { pupil_r2: 0.3 } }];
  const out = await runStage(report, { png: false }, { metrics: items, details: [{ kind: 'artifact', path: dir, description: 'evaluation' }] }, testContext('report', 1, root));
  const md = readFileSync(join((out.report[0] as ReportRef).path, 'report.md'), 'utf8');
  assert.match(md, /\| first bin \| -?\d\.\d{3} \| -?\d\.\d{3} \| -?\d\.\d{3} \|/, 'headline table with the oracle column');
  assert.match(md, /\| first bin \| mtm \| \d+ \| \d+ \|/, 'spread table');
  assert.match(md, '| pupil diameter R² | 0.300 | 0.200 | 0 (R²) |');
  assert.match(md, /First bin bits\/spike \(per-neuron mean\): mtm is better than temporal by 0\.100/);
  assert.match(md, /- First bin: the oracle \(true rates\) scores/);
  const json = JSON.parse(readFileSync(join((out.report[0] as ReportRef).path, 'report.json'), 'utf8'));
  assert.type(json.perSession.s1.mtm.first_bin_oracle_ratio, 'number');
  assert.is(json.spread.mtm.first_bin.quantilesOver, 'units');

  const sweep = buildSweep(items.map((x) => ({ ...x, label: `${x.label}-n1` })));
  assert.ok(sweep.metrics.includes('first_bin_bps') && sweep.metrics.includes('pupil_r2'));
  assert.type(sweep.oracle.first_bin_bps, 'number');
});

test.run();
