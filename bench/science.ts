// `npm run bench -- science`: does mtm-flow's NDT1 score what the same recipe scores in PyTorch?
//
// 1. The quickstart graph (graphs/quickstart.yaml), with one node added that writes its binned,
//    region-labelled sessions (write-binned-session@1), runs once per seed through the CLI
//    (`mtm run <graph> --seed k --set epochs=...`). Its data seeds (simulation, trial split) are
//    pinned to the ones the quickstart's own seed gives, so every run bins the very same sessions
//    as `npx mtm run graphs/quickstart.yaml` does; the written folders are hashed and must agree.
//    Each run trains and evaluates the MtM and the temporal model (decoding off: only bits/spike
//    is compared).
// 2. The PyTorch peer (bench/torch_science.py) trains each scheme per seed on the binned folders of
//    the first run, with the recipe read from that run's graph.resolved.yaml (sampler, optimiser,
//    NDT1 config, evaluation params), and evaluates on the same test trials.
// 3. Three checks tie the two sides together: the oracle bits/spike (the simulator's true rates
//    scored on the entries each task scored) must agree, i.e. the same trials, split, neurons,
//    regions, masks and formula; the peer evaluating every mtm-flow checkpoint with its weights
//    must give mtm-flow's bits/spike (forward pass and tasks); and the peer replaying mtm-flow's
//    own training steps from the same weights must give its losses and gradient norms (loss,
//    gradients, clipping, AdamW, schedule). What is left between the two is their random draws.
// 4. bench/results/science.json: per task and scheme, both means over seeds (each seed's figure is
//    the mean over sessions, as the report's), their difference, seed-to-seed spread, the recipe,
//    the checks, versions, machine, load and wall times.
//
// mtm-flow runs from a copy of the checkout's HEAD commit (git archive, native kernels rebuilt
// there), so edits in a shared checkout cannot change the code between seeds or between the two
// sides' recipes; --checkout runs the working tree as it is instead.
//
// Usage: npm run bench -- science                      (the quickstart's budget, 5 seeds)
//        node --import tsx bench/science.ts [--epochs N] [--seeds 1,2,3] [--schemes mtm,temporal]
//          [--one-session <ONE session folder or eid>]... [--one-cache DIR] [--work DIR]
//          [--out FILE] [--python PATH] [--threads N] [--quick] [--checkout]
//        MTM_SCIENCE_EPOCHS / MTM_SCIENCE_SEEDS set the same as the flags (flags win).
// --quick: 3 epochs, 2 seeds, written to bench/results/science-quick.json unless --out says.
// --one-session adds sessions read from a ONE cache (in local mode) to the simulated ones: they
// are binned, trained on and scored by both sides alike.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { activityTask } from '../core/eval/task-registry.ts';
import { createRng, hashString } from '../core/rng.ts';
import { sampleMask, applyMask } from '../core/masking/masking.ts';
import type { MaskedBatch } from '../core/masking/types.ts';
import { writeNpy } from '../core/io/npy.ts';
import { initBackend } from '../core/tensor/backend.ts';
import { AdamW } from '../core/train/adamw.ts';
import { saveModelFolder } from '../core/train/checkpoint.ts';
import { oneCycleLr } from '../core/train/schedule.ts';
import { trainStep } from '../core/train/step.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { ndt1ConfigSchema } from '../plugins/ndt1/model.ts';

const here = import.meta.dirname;
const root = resolve(here, '..');
export const QUICKSTART = join(root, 'graphs', 'quickstart.yaml');
export const PEER_SCRIPT = join(here, 'torch_science.py');
export const VENV_PYTHON = join(here, '.venv', 'bin', 'python');
export const SETUP_SCRIPT = join(here, 'setup-peer.sh');
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** The tasks torch_science.py implements (ids of mtm-flow's task registry). */
export const TASKS = ['coSmoothing', 'forwardPrediction', 'interRegion', 'intraRegion'] as const;
export type Task = (typeof TASKS)[number];
/** mtm-flow's metric key stem per task (evaluate@1), from the task registry. */
export const TASK_KEY = Object.fromEntries(TASKS.map((t) => [t, activityTask(t).stem])) as Record<Task, string>;
/** The quickstart's model nodes and their samplers, per masking scheme. */
export const SCHEME_NODES: Record<string, { train: string; sampler: string; val: string }> = {
  mtm: { train: 'mtm', sampler: 'mtmTrain', val: 'mtmVal' },
  temporal: { train: 'temporal', sampler: 'temporalTrain', val: 'temporalVal' },
};

const log = (msg: string) => console.error(`science: ${msg}`);
const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------------------------------------
// The graph and its data seeds.

type Graph = { name?: string; description?: string; seed?: number; params?: Record<string, unknown>; nodes: Record<string, { stage: string; in?: Record<string, unknown>; params?: Record<string, unknown> }> };

/** The seed a node's ctx.seed gets under a graph seed (core/runtime/run-graph.ts's rule). */
export function nodeSeed(nodeId: string, graphSeed: number): number {
  return (hashString(nodeId, graphSeed) ^ graphSeed) >>> 0;
}

/**
 * The quickstart plus a `write` node for its binned sessions and, with extra ONE sessions, a
 * second source whose sessions are binned with the simulated ones.
 */
export function scienceGraph(extraSessions: string[] = [], oneCache = '', src = root): Graph {
  const g = YAML.parse(readFileSync(join(src, 'graphs', 'quickstart.yaml'), 'utf8')) as Graph;
  for (const id of ['simulate', 'source', 'bin', 'label', 'evaluate', ...Object.values(SCHEME_NODES).flatMap((n) => [n.train, n.sampler, n.val])]) {
    if (!g.nodes[id]) throw new Error(`graphs/quickstart.yaml has no node '${id}': bench/science.ts needs updating`);
  }
  g.name = 'science-quickstart';
  g.description = `${g.description ?? ''} (bench/science.ts: + write-binned-session)`;
  g.nodes.write = { stage: 'write-binned-session@1', in: { sessions: 'label.sessions' } };
  if (extraSessions.length) {
    g.nodes.extra = { stage: 'one-download@1', params: { sessions: extraSessions, mode: 'local', ...(oneCache ? { cacheDir: oneCache } : {}) } };
    g.nodes.bin.in = { sessions: ['source.sessions', 'extra.sessions'] };
  }
  return g;
}

/** --set overrides that pin the simulation and the trial split to those of the quickstart's own seed. */
export function dataPins(quickstartSeed: number): string[] {
  return [`simulate.seed=${nodeSeed('simulate', quickstartSeed)}`, `bin.seed=${nodeSeed('bin', quickstartSeed)}`];
}

// ---------------------------------------------------------------------------------------------
// The peer's recipe, from the resolved graph.

/** masking-sampler params the peer ports, and how they map onto its recipe. */
const SAMPLER_KNOWN = new Set([
  'split', 'batchSize', 'mode', 'epochs', 'shuffle', 'dropLast', 'temporalRatio', 'neuronRatio', 'causalRatio', 'intraRegionRatio',
  'timeSpan', 'causalForecast', 'sessionBalance', 'maxTrials', 'regionLevel',
]);
const TRAIN_KNOWN = new Set(['architecture', 'config', 'learningRate', 'weightDecay', 'warmupFraction', 'clipNorm', 'patience', 'prompts', 'sessionTokens', 'init', 'trainScope', 'label']);

/**
 * How train-model initialises NDT1's readout: from each neuron's mean training count when it
 * hands the model SessionSpec.meanCounts (read from its source: the trainer decides, not the
 * graph), else the Linear default.
 */
export function readoutInit(src = root): 'meanCounts' | 'default' {
  return /trainingMeanCounts\(/.test(readFileSync(join(src, 'stages', 'train-model.ts'), 'utf8')) ? 'meanCounts' : 'default';
}

export interface PeerRecipe {
  sampler: Record<string, unknown> & { mode: string; epochs: number; batchSize: number; ratios: Record<string, number>; timeShape: Record<string, number> };
  train: Record<string, unknown>;
  model: Record<string, unknown>;
  evaluate: Record<string, unknown>;
}

/**
 * The recipe of one scheme's model as the resolved graph ran it. Throws on a sampler or trainer
 * param the peer does not port, or on a value it does not support, so a change to the masking or
 * the trainer cannot silently leave the two sides different.
 */
export function peerRecipe(resolved: Graph, scheme: string, o: { src?: string; savedConfig?: Record<string, unknown> } = {}): PeerRecipe {
  const ids = SCHEME_NODES[scheme];
  if (!ids) throw new Error(`no quickstart nodes for scheme ${scheme} (known: ${Object.keys(SCHEME_NODES).join(', ')})`);
  const s = resolved.nodes[ids.sampler].params ?? {};
  const v = resolved.nodes[ids.val].params ?? {};
  const t = resolved.nodes[ids.train].params ?? {};
  const e = resolved.nodes.evaluate.params ?? {};
  const unknown = [...Object.keys(s).filter((k) => !SAMPLER_KNOWN.has(k)).map((k) => `${ids.sampler}.${k}`), ...Object.keys(t).filter((k) => !TRAIN_KNOWN.has(k)).map((k) => `${ids.train}.${k}`)];
  if (unknown.length) throw new Error(`the PyTorch peer does not port ${unknown.join(', ')}: mirror them in bench/torch_science.py and bench/science.ts`);
  for (const k of Object.keys(s)) if (!['split', 'epochs'].includes(k) && JSON.stringify(s[k]) !== JSON.stringify(v[k])) throw new Error(`${ids.val}.${k} (${JSON.stringify(v[k])}) differs from ${ids.sampler}.${k} (${JSON.stringify(s[k])}): the peer masks both alike`);
  const unsupported: string[] = [];
  if (s.shuffle !== true) unsupported.push('shuffle false');
  if (s.sessionBalance !== 'proportional') unsupported.push(`sessionBalance ${s.sessionBalance}`);
  if (s.maxTrials !== 0) unsupported.push(`maxTrials ${s.maxTrials}`);
  if (t.architecture !== 'ndt1') unsupported.push(`architecture ${t.architecture}`);
  if (t.init !== '' || t.trainScope !== 'all') unsupported.push('fine-tuning');
  if (t.patience !== 0) unsupported.push(`patience ${t.patience}`);
  if (unsupported.length) throw new Error(`the PyTorch peer does not support ${unsupported.join(', ')}`);
  // The config the trained model was built with (its model.json) when given; else NDT1's defaults
  // filled in, promptTokens / sessionTokens left to train-model's auto rules unless set.
  const user = (t.config ?? {}) as Record<string, unknown>;
  let model: Record<string, unknown>;
  if (o.savedConfig) model = { ...o.savedConfig };
  else {
    model = ndt1ConfigSchema.parse(user);
    for (const k of ['promptTokens', 'sessionTokens']) if (!(k in user)) delete model[k];
  }
  return {
    sampler: {
      mode: String(s.mode), epochs: Number(s.epochs), batchSize: Number(s.batchSize), shuffle: true, dropLast: Boolean(s.dropLast),
      sessionBalance: 'proportional', maxTrials: 0, regionLevel: String(s.regionLevel ?? 'acronym'),
      ratios: { temporal: Number(s.temporalRatio), neuron: Number(s.neuronRatio), causal: Number(s.causalRatio), intraRegion: Number(s.intraRegionRatio) },
      timeShape: { span: Number(s.timeSpan ?? 1), forecast: Number(s.causalForecast ?? 0) },
    },
    train: { learningRate: t.learningRate, weightDecay: t.weightDecay, warmupFraction: t.warmupFraction, clipNorm: t.clipNorm, prompts: t.prompts, sessionTokens: t.sessionTokens, readoutInit: readoutInit(o.src) },
    model,
    evaluate: {
      split: e.split ?? 'test', forwardPredictionBins: e.forwardPredictionBins, regionLevel: e.regionLevel, maxLeftOutNeurons: e.maxLeftOutNeurons,
      coSmoothingPrompt: e.coSmoothingPrompt, forwardPredictionPrompt: e.forwardPredictionPrompt, interRegionPrompt: e.interRegionPrompt, intraRegionPrompt: e.intraRegionPrompt,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The peer's interpreter.

export interface PeerPython {
  python: string;
  /** venv: bench/.venv (pip, this machine's wheel store); system: Debian's python3 with python3-torch. */
  source: 'venv' | 'system' | 'given';
  torchVersion: string;
  pythonVersion: string;
}

/** Python settings of other interpreters removed, threads pinned. */
export function peerEnv(threads: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'VIRTUAL_ENV', 'PYTHONUSERBASE']) delete env[k];
  env.PYTHONNOUSERSITE = '1';
  for (const k of ['OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS']) env[k] = String(threads);
  return env;
}

/** torch and python versions when `python` imports torch, numpy, pandas and pyarrow; else undefined. */
export function probePython(python: string): { torchVersion: string; pythonVersion: string } | undefined {
  const r = spawnSync(python, ['-c', 'import platform, numpy, pandas, pyarrow, torch; print(torch.__version__, platform.python_version())'], { env: peerEnv(1), encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [torchVersion, pythonVersion] = r.stdout.trim().split(/\s+/);
  return { torchVersion, pythonVersion };
}

/**
 * The strongest PyTorch this machine has: bench/.venv (made by bench/setup-peer.sh from the
 * configured wheel store when missing), else Debian's python3 with python3-torch (apt-get, as
 * root, when missing). Throws a sentence saying what is missing.
 */
export function findPeerPython(o: { python?: string; setup?: boolean } = {}): PeerPython {
  if (o.python) {
    const p = probePython(o.python);
    if (!p) throw new Error(`${o.python} cannot import torch, numpy, pandas and pyarrow`);
    return { python: o.python, source: 'given', ...p };
  }
  let venv = existsSync(VENV_PYTHON) ? probePython(VENV_PYTHON) : undefined;
  if (!venv && o.setup !== false && existsSync(SETUP_SCRIPT)) {
    log(`bench/.venv has no torch: running bash bench/setup-peer.sh`);
    const r = spawnSync('bash', [SETUP_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status === 0) venv = probePython(VENV_PYTHON);
    else log(`bench/setup-peer.sh failed (exit ${r.status}): trying Debian's python3-torch`);
  }
  if (venv) return { python: VENV_PYTHON, source: 'venv', ...venv };
  let sys = probePython(SYSTEM_PYTHON);
  if (!sys && o.setup !== false && process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    log('installing Debian python3-torch python3-pandas python3-pyarrow');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torch', 'python3-pandas', 'python3-pyarrow', 'libopenblas0-pthread'], { stdio: 'inherit', env });
    sys = probePython(SYSTEM_PYTHON);
  }
  if (sys) return { python: SYSTEM_PYTHON, source: 'system', ...sys };
  throw new Error('no Python with torch, numpy, pandas and pyarrow: run bash bench/setup-peer.sh (or apt-get install python3-torch python3-pandas python3-pyarrow)');
}

// ---------------------------------------------------------------------------------------------
// Running both sides.

export interface PeerResult {
  format: string;
  scheme: string;
  seed: number;
  torchVersion: string;
  python: { executable: string; version: string; numpy: string };
  threads: number;
  model: { config: Record<string, unknown>; params: number };
  sessions: { sessionId: string; trials: Record<string, number>; bins: number; neurons: number; regions: string[] }[];
  training: { best: { epoch: number; score: number; trainLoss: number; valLoss: number | null }; history: { epoch: number; trainLoss: number; valLoss: number | null; seconds: number }[]; trainedModes: string[]; batchesPerEpoch: number; steps: number; seconds: number };
  evaluation: Record<string, Partial<Record<Task, { bps: number | null; pooled: number | null; oracle?: number | null; mode: string; causal: boolean; evaluated: number; excluded: number; skipped?: string }>>>;
  mean: Record<Task, number | null>;
  wallS: { train: number; evaluate: number; total: number };
}

/** Runs torch_science.py and returns its result line. */
export function runPeer(python: string, folders: string[], recipe: PeerRecipe, seed: number, o: { threads?: number; timeoutMs?: number; quiet?: boolean; outFile?: string; loadMtmFlow?: string } = {}): Promise<PeerResult> {
  const args = [
    PEER_SCRIPT, '--recipe', JSON.stringify(recipe), '--seed', String(seed), '--threads', String(o.threads ?? 1), ...(o.quiet ? ['--quiet'] : []), ...(o.outFile ? ['--out', o.outFile] : []),
    ...(o.loadMtmFlow ? ['--load-mtm-flow', o.loadMtmFlow] : []), ...folders,
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { env: peerEnv(o.threads ?? 1), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (!o.quiet) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60 * 60_000);
    child.on('error', (e) => reject(new Error(`cannot start ${python}: ${e.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`torch_science.py (${recipe.sampler.mode}, seed ${seed}) exited with ${code ?? signal}:\n${err.slice(-3000)}`));
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      try {
        resolvePromise(JSON.parse(line ?? '') as PeerResult);
      } catch {
        reject(new Error(`torch_science.py printed no JSON result:\n${out.slice(-2000)}`));
      }
    });
  });
}

interface MtmRun {
  seed: number;
  git: { commit: string; modified: string[] };
  dir: string;
  wallS: number;
  /** values per scheme label, per session, as the evaluate node recorded them. */
  values: Record<string, Record<string, Record<string, number>>>;
  history: Record<string, { epoch: number; trainLoss: number; valLoss: number | null; seconds: number; best: boolean }[]>;
  backend: string;
}

function runMtm(src: string, graphFile: string, dir: string, seed: number, sets: string[]): MtmRun {
  const args = [join(src, 'bin', 'mtm.js'), 'run', graphFile, '--out', dir, '--seed', String(seed), ...sets.flatMap((s) => ['--set', s])];
  log(`mtm-flow seed ${seed}: node ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`);
  const git = gitState(src);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: src, env: { ...process.env, CI: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  const wallS = (performance.now() - t0) / 1000;
  writeFileSync(join(dir, 'science-stderr.log'), r.stderr ?? '');
  if (r.status !== 0) throw new Error(`mtm run (seed ${seed}) exited with ${r.status}; see ${join(dir, 'science-stderr.log')}:\n${(r.stderr ?? '').slice(-3000)}`);
  const values: MtmRun['values'] = {};
  const history: MtmRun['history'] = {};
  for (const line of readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.node === 'evaluate' && typeof m.label === 'string' && typeof m.sessionId === 'string') {
      (values[m.label] ??= {})[m.sessionId] = m as Record<string, number>;
    } else if (Object.values(SCHEME_NODES).some((n) => n.train === m.node) && typeof m.epoch === 'number') {
      (history[String(m.label)] ??= []).push({ epoch: m.epoch, trainLoss: m.trainLoss as number, valLoss: (m.valLoss as number | null) ?? null, seconds: m.seconds as number, best: Boolean(m.best) });
    }
  }
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { backend?: string };
  return { seed, git, dir, wallS, values, history, backend: run.backend ?? 'unknown' };
}

/** md5 of every file of each binned session folder, by folder name. */
export function hashFolders(parent: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(parent).sort()) {
    const h = createHash('md5');
    for (const f of ['counts.npy', 'trials.parquet', 'neurons.parquet', 'trueRates.npy']) {
      const p = join(parent, name, f);
      if (existsSync(p)) h.update(f).update(readFileSync(p));
    }
    out[name] = h.digest('hex');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Step parity: mtm-flow's own training steps, replayed by the peer from the same weights.

export interface StepParity {
  steps: number;
  maxLossRelDiff: number;
  maxGradNormRelDiff: number;
  maxFinalWeightAbsDiff: number;
  maxFinalWeightAbs: number;
  clippedSteps: number;
  torchVersion: string;
}

/**
 * Runs `steps` mtm-flow training steps (trainStep: forward, Poisson NLL, gradients, clipping,
 * AdamW at the one-cycle rate) on an NDT1 over two small sessions with session and prompt tokens,
 * MtM masks from core/masking, dropout off, and writes what the peer needs to replay them: the
 * initial and final weights (model folders), each step's batch (.npy), mode and rate, and
 * mtm-flow's loss and gradient norm per step (steps.json).
 */
export async function writeStepParity(dir: string, o: { steps?: number; clipNorm?: number; seed?: number } = {}): Promise<void> {
  await initBackend();
  const steps = o.steps ?? 16;
  const clipNorm = o.clipNorm ?? 0.5;
  const rng = createRng(o.seed ?? 17);
  const T = 24;
  const layouts = [
    { sessionId: 'parity-a', regions: ['CA1', 'CA1', 'CA1', 'CA1', 'LP', 'LP', 'LP', 'PO', 'PO', 'PO', 'PO', 'PO'] },
    { sessionId: 'parity-b.2', regions: ['DG', 'DG', 'VPM', 'VPM', 'VPM', 'VPM', 'MOs', 'MOs', 'MOs'] },
  ];
  const specs = layouts.map((l) => ({ sessionId: l.sessionId, nNeurons: l.regions.length, nBins: T, regions: l.regions }));
  const config = { dModel: 16, layers: 2, heads: 2, mlpDim: 32, dropout: 0, embedDropout: 0, attentionDropout: 0, promptTokens: true, sessionTokens: true };
  const model = ndt1Architecture.build(config, { sessions: specs, seed: o.seed ?? 17 });
  const opt = new AdamW({ weightDecay: 0.01 });
  mkdirSync(dir, { recursive: true });
  await saveModelFolder(join(dir, 'init'), model, { trainedModes: [] });
  const record: { session: number; mode: string; causal: boolean; lr: number }[] = [];
  const losses: number[] = [];
  const gradNorms: number[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const si = i % layouts.length;
      const spec = specs[si];
      const shape = { trials: 4, bins: T, neurons: spec.nNeurons };
      const target = new Int32Array(shape.trials * T * spec.nNeurons);
      for (let e = 0; e < target.length; e++) target[e] = rng.poisson(0.3 + 0.5 * ((e % spec.nNeurons) / spec.nNeurons) * (1 + Math.sin(Math.floor(e / spec.nNeurons) / 4)));
      // Scheme mtm, with the first steps forced through every mode so each is replayed.
      const scheme = i < 4 ? (['neuron', 'causal', 'inter-region', 'intra-region'] as const)[i] : 'mtm';
      const draw = sampleMask(shape, spec.regions, scheme, rng);
      const batch = {
        kind: 'masked-batch', sessionId: spec.sessionId, split: 'train', epoch: 0, epochs: 1, batchIndex: i, batchesInEpoch: steps,
        trialIndex: new Int32Array(shape.trials), shape, binSizeMs: 20, input: applyMask(target, draw.masked), target, lossMask: draw.lossMask, masked: draw.masked,
        mode: draw.mode, causal: draw.causal, regions: spec.regions,
      } as MaskedBatch;
      const lr = oneCycleLr(i, { peak: 0.01, totalSteps: steps, warmupFraction: 0.15 });
      const r = await trainStep(model, opt, batch, { lr, clipNorm, dropoutSeed: i });
      if (!r.ok) throw new Error(`step parity: step ${i} gave loss ${r.loss}, gradient norm ${r.gradNorm}`);
      losses.push(r.loss);
      gradNorms.push(r.gradNorm);
      record.push({ session: si, mode: draw.mode, causal: draw.causal, lr });
      const dims = [shape.trials, T, spec.nNeurons];
      await writeNpy(join(dir, `step${i}-input.npy`), batch.input, dims);
      await writeNpy(join(dir, `step${i}-target.npy`), target, dims);
      await writeNpy(join(dir, `step${i}-loss.npy`), Float32Array.from(draw.lossMask), dims);
    }
    await saveModelFolder(join(dir, 'final'), model, { trainedModes: [] });
  } finally {
    model.dispose();
    opt.dispose();
  }
  writeFileSync(join(dir, 'steps.json'), JSON.stringify({ sessions: specs, config, weightDecay: 0.01, clipNorm, steps: record, losses, gradNorms }, null, 1));
}

/** The peer replays a writeStepParity folder; returns its comparison. */
export function replayStepParity(python: string, dir: string): StepParity {
  const r = spawnSync(python, [PEER_SCRIPT, '--replay', dir], { env: peerEnv(1), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_science.py --replay failed (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return JSON.parse(line ?? '{}') as StepParity;
}

// ---------------------------------------------------------------------------------------------
// Statistics.

export interface Spread {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); 0 for one value. */
  sd: number;
  min: number;
  max: number;
  values: number[];
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  const mean = n ? v.reduce((a, b) => a + b, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean: round(mean, 5), sd: round(sd, 5), min: round(Math.min(...v), 5), max: round(Math.max(...v), 5), values: v.map((x) => round(x, 5)) };
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** A seed's figure for a task: the mean over sessions of the per-neuron mean bps (the report's mean). */
function mtmTaskMean(run: MtmRun, label: string, task: Task, key = 'bps'): number {
  const per = Object.values(run.values[label] ?? {}).map((v) => v[`${TASK_KEY[task]}_${key}`]).filter((x): x is number => typeof x === 'number');
  return meanOf(per);
}

/**
 * A copy of the checkout's HEAD commit in `dest` (git archive; node_modules linked, the native
 * kernels built from the copy's own sources), so the measurement runs committed code that edits in
 * the checkout cannot change halfway through. Returns the commit.
 */
export function snapshotHead(dest: string): { commit: string; nativeKernels: boolean } {
  const commit = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`cannot read the checkout's HEAD commit (git rev-parse HEAD gave '${commit}')`);
  mkdirSync(dest, { recursive: true });
  const tar = spawnSync('bash', ['-c', 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', 'snapshot', root, commit, dest], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (tar.status !== 0) throw new Error(`git archive of ${commit} into ${dest} failed (exit ${tar.status})`);
  if (!existsSync(join(dest, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(dest, 'node_modules'));
  spawnSync(process.execPath, [join(dest, 'native', 'build.mjs'), '--force'], { cwd: dest, stdio: ['ignore', 'inherit', 'inherit'] });
  writeFileSync(join(dest, 'SNAPSHOT'), `${commit}\n`);
  return { commit, nativeKernels: existsSync(join(dest, 'native', 'build', 'mtm_kernels.node')) };
}

/** The commit a source tree runs and the files that differ from it (other work in a checkout). */
function gitState(src = root): { commit: string; modified: string[] } {
  if (existsSync(join(src, 'SNAPSHOT'))) return { commit: readFileSync(join(src, 'SNAPSHOT'), 'utf8').trim(), modified: [] };
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const st = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' });
  return { commit: head.stdout?.trim() ?? 'unknown', modified: (st.stdout ?? '').split('\n').filter(Boolean).map((l) => l.slice(3)) };
}

function machine() {
  const c = cpus();
  return { cpuModel: c[0]?.model.trim() ?? 'unknown', cores: c.length, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, platform: `${process.platform}-${process.arch}` };
}

// ---------------------------------------------------------------------------------------------

interface Options {
  epochs?: number;
  seeds: number[];
  schemes: string[];
  extraSessions: string[];
  oneCache: string;
  work: string;
  out: string;
  python?: string;
  threads: number;
  quick: boolean;
  /** Run mtm-flow from the checkout as it is (uncommitted edits included) instead of a copy of HEAD. */
  checkout: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seeds: [], schemes: ['mtm', 'temporal'], extraSessions: [], oneCache: '', work: '', out: '', threads: 1, quick: false, checkout: false };
  const envEpochs = process.env.MTM_SCIENCE_EPOCHS;
  const envSeeds = process.env.MTM_SCIENCE_SEEDS;
  if (envEpochs) o.epochs = Number(envEpochs);
  if (envSeeds) o.seeds = envSeeds.split(',').map(Number);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--epochs') o.epochs = Number(next());
    else if (a === '--seeds') o.seeds = next().split(',').map(Number);
    else if (a === '--schemes') o.schemes = next().split(',');
    else if (a === '--one-session') o.extraSessions.push(next());
    else if (a === '--one-cache') o.oneCache = resolve(next());
    else if (a === '--work') o.work = resolve(next());
    else if (a === '--out') o.out = resolve(next());
    else if (a === '--python') o.python = next();
    else if (a === '--threads') o.threads = Number(next());
    else if (a === '--quick') o.quick = true;
    else if (a === '--checkout') o.checkout = true;
    else throw new Error(`unknown argument ${a} (see the usage at the top of bench/science.ts)`);
  }
  if (o.quick) {
    o.epochs ??= 3;
    if (!o.seeds.length) o.seeds = [1, 2];
  }
  if (!o.seeds.length) o.seeds = [1, 2, 3, 4, 5];
  if (o.epochs !== undefined && !(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new Error(`epochs must be a positive integer, got ${o.epochs}`);
  if (o.seeds.some((s) => !Number.isInteger(s))) throw new Error(`seeds must be integers, got ${o.seeds.join(',')}`);
  for (const s of o.schemes) if (!SCHEME_NODES[s]) throw new Error(`unknown scheme ${s} (the quickstart trains ${Object.keys(SCHEME_NODES).join(', ')})`);
  o.out ||= join(here, 'results', o.quick ? 'science-quick.json' : 'science.json');
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const loadStart = loadavg();
  const loads: number[][] = [loadStart];
  const sampler = setInterval(() => loads.push(loadavg()), 30_000);
  sampler.unref();
  const peer = findPeerPython({ python: o.python });
  log(`peer: ${peer.python} (${peer.source}), Python ${peer.pythonVersion}, torch ${peer.torchVersion}`);

  const work = o.work || mkdtempSync(join(tmpdir(), 'mtm-science-'));
  mkdirSync(work, { recursive: true });
  // mtm-flow's side runs from a copy of the HEAD commit unless --checkout: other work in the
  // checkout must not change the code between seeds, or between the two sides.
  let src = root;
  let snapshot: { commit: string; nativeKernels: boolean } | undefined;
  if (!o.checkout) {
    src = join(work, 'mtm-flow-src');
    snapshot = snapshotHead(src);
    log(`mtm-flow runs from a copy of ${snapshot.commit} in ${src} (native kernels ${snapshot.nativeKernels ? 'built' : 'not built'})`);
  }
  const git = { ...gitState(), ranFrom: o.checkout ? 'the checkout as it was (--checkout)' : `a copy of commit ${snapshot!.commit}` };
  const graph = scienceGraph(o.extraSessions, o.oneCache, src);
  const graphFile = join(work, 'science-quickstart.yaml');
  writeFileSync(graphFile, `# Written by bench/science.ts: graphs/quickstart.yaml plus a write-binned-session node.\n${YAML.stringify(graph)}`);
  const quickstartSeed = graph.seed ?? 1;
  const defaults = (graph.params ?? {}) as Record<string, unknown>;
  const epochs = o.epochs ?? Number(defaults.epochs);
  const sets = [`epochs=${epochs}`, `cacheDir=${join(work, 'one-cache')}`, 'evaluate.decoding=false', ...dataPins(quickstartSeed)];
  log(`work folder ${work}; ${epochs} epochs, seeds ${o.seeds.join(', ')}, schemes ${o.schemes.join(', ')}`);

  // mtm-flow, one graph run per seed (both schemes in each).
  const runs: MtmRun[] = [];
  let firstHashes: Record<string, string> | undefined;
  const sameData: { seed: number; identical: boolean }[] = [];
  for (const seed of o.seeds) {
    const dir = join(work, `mtm-flow-seed-${seed}`);
    const run = runMtm(src, graphFile, dir, seed, sets);
    const hashes = hashFolders(join(dir, 'artifacts', 'write'));
    firstHashes ??= hashes;
    const identical = JSON.stringify(hashes) === JSON.stringify(firstHashes);
    sameData.push({ seed, identical });
    if (!identical) throw new Error(`seed ${seed} binned different sessions than seed ${o.seeds[0]} (${JSON.stringify(hashes)} vs ${JSON.stringify(firstHashes)})`);
    runs.push(run);
    log(`mtm-flow seed ${seed}: ${round(run.wallS, 1)} s; ${o.schemes.map((s) => `${s} ${TASKS.map((t) => `${t} ${round(mtmTaskMean(run, s, t))}`).join(' ')}`).join(' | ')}`);
  }
  const first = runs[0];
  const folders = readdirSync(join(first.dir, 'artifacts', 'write')).sort().map((n) => join(first.dir, 'artifacts', 'write', n));
  const resolved = YAML.parse(readFileSync(join(first.dir, 'graph.resolved.yaml'), 'utf8')) as Graph;

  // The peer, per scheme and seed, on the first run's binned folders.
  const recipes: Record<string, PeerRecipe> = {};
  const peerRuns: Record<string, PeerResult[]> = {};
  for (const scheme of o.schemes) {
    const saved = JSON.parse(readFileSync(join(first.dir, 'artifacts', SCHEME_NODES[scheme].train, 'best', 'model.json'), 'utf8')) as { modelTopology: { config: Record<string, unknown> } };
    recipes[scheme] = peerRecipe(resolved, scheme, { src, savedConfig: saved.modelTopology.config });
    peerRuns[scheme] = [];
    for (const seed of o.seeds) {
      log(`peer ${scheme} seed ${seed}`);
      const r = await runPeer(peer.python, folders, recipes[scheme], seed, { threads: o.threads, quiet: true, outFile: join(work, `peer-${scheme}-seed-${seed}.json`) });
      peerRuns[scheme].push(r);
      log(`peer ${scheme} seed ${seed}: train ${round(r.wallS.train, 1)} s, evaluate ${round(r.wallS.evaluate, 1)} s; ${TASKS.map((t) => `${t} ${round(r.mean[t] ?? NaN)}`).join(' ')}`);
    }
  }

  // Parity checks. Same weights: the peer evaluates each mtm-flow model with its weights; its
  // bits/spike must equal mtm-flow's to float32 rounding (forward pass and evaluation ported
  // exactly). Step parity: the peer replays mtm-flow's own training steps from its weights.
  const sameWeights: Record<string, { maxAbsDiff: number; seeds: number[] }> = {};
  for (const scheme of o.schemes) {
    let worst = 0;
    for (const run of runs) {
      const dir = join(run.dir, 'artifacts', SCHEME_NODES[scheme].train, 'best');
      const r = await runPeer(peer.python, folders, recipes[scheme], run.seed, { threads: o.threads, quiet: true, loadMtmFlow: dir });
      for (const [sid, tasks] of Object.entries(r.evaluation)) {
        for (const task of TASKS) {
          const ours = run.values[scheme]?.[sid]?.[`${TASK_KEY[task]}_bps`];
          const theirs = tasks[task]?.bps;
          if (typeof ours === 'number' && typeof theirs === 'number') worst = Math.max(worst, Math.abs(ours - theirs));
          else if ((typeof ours === 'number') !== (typeof theirs === 'number')) worst = Infinity;
        }
      }
    }
    sameWeights[scheme] = { maxAbsDiff: worst, seeds: runs.map((r) => r.seed) };
    log(`same weights, ${scheme}: max |bps difference| ${worst.toExponential(2)}`);
  }
  const parityDir = join(work, 'step-parity');
  // Written by the source tree's own trainer (a child process), replayed by the peer.
  const wrote = spawnSync(process.execPath, ['--import', 'tsx', join(src, 'bench', 'science.ts'), '--write-step-parity', parityDir], { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] });
  if (wrote.status !== 0) throw new Error(`writing the step-parity folder with ${src}'s trainer failed (exit ${wrote.status})`);
  const stepParity = replayStepParity(peer.python, parityDir);
  log(`step parity: ${stepParity.steps} steps, loss rel. diff ${stepParity.maxLossRelDiff.toExponential(2)}, grad norm rel. diff ${stepParity.maxGradNormRelDiff.toExponential(2)}`);

  // Results.
  const results: Record<string, Record<string, unknown>> = {};
  const gaps: string[] = [];
  for (const task of TASKS) {
    results[task] = {};
    for (const scheme of o.schemes) {
      const a = spread(runs.map((r) => mtmTaskMean(r, scheme, task)));
      const b = spread(peerRuns[scheme].map((r) => r.mean[task] ?? NaN));
      const diff = a.mean - b.mean;
      const seedSpread = Math.max(a.sd, b.sd);
      const trails = diff < -seedSpread;
      if (trails) gaps.push(`${task} (${scheme}): mtm-flow ${a.mean} vs peer ${b.mean}, difference ${round(diff, 5)}, seed sd ${a.sd} / ${b.sd}`);
      results[task][scheme] = {
        mtmFlow: a,
        peer: b,
        difference: round(diff, 5),
        // Standard error of the difference of the two means (Welch), beside the raw spreads.
        differenceSe: round(Math.sqrt(a.sd ** 2 / Math.max(1, a.n) + b.sd ** 2 / Math.max(1, b.n)), 5),
        mtmFlowTrailsBeyondSpread: trails,
      };
    }
  }
  // Oracle check: both sides score the true rates on the entries their task scored.
  let oracleMaxAbsDiff = 0;
  for (const scheme of o.schemes) {
    const p = peerRuns[scheme][0];
    for (const [sid, tasks] of Object.entries(p.evaluation)) {
      for (const task of TASKS) {
        const ours = first.values[scheme]?.[sid]?.[`${TASK_KEY[task]}_oracle_bps`];
        const theirs = tasks[task]?.oracle;
        if (typeof ours === 'number' && typeof theirs === 'number') oracleMaxAbsDiff = Math.max(oracleMaxAbsDiff, Math.abs(ours - theirs));
      }
    }
  }
  const perSession: Record<string, unknown> = {};
  for (const scheme of o.schemes) {
    for (const sid of Object.keys(first.values[scheme] ?? {})) {
      for (const task of TASKS) {
        const key = `${TASK_KEY[task]}_bps`;
        ((perSession[sid] ??= {}) as Record<string, unknown>)[`${scheme}.${task}`] = {
          mtmFlow: spread(runs.map((r) => r.values[scheme]?.[sid]?.[key] ?? NaN)),
          peer: spread(peerRuns[scheme].map((r) => r.evaluation[sid]?.[task]?.bps ?? NaN)),
          oracle: round(first.values[scheme]?.[sid]?.[`${TASK_KEY[task]}_oracle_bps`] ?? NaN, 5),
        };
      }
    }
  }
  const lastHist = (h: { valLoss: number | null; best: boolean }[] | undefined) => {
    const best = (h ?? []).filter((x) => x.best).pop();
    return best?.valLoss ?? NaN;
  };
  const training: Record<string, unknown> = {};
  for (const scheme of o.schemes) {
    training[scheme] = {
      mtmFlow: {
        bestValLoss: spread(runs.map((r) => lastHist(r.history[scheme]))),
        bestEpoch: runs.map((r) => (r.history[scheme] ?? []).filter((x) => x.best).pop()?.epoch ?? null),
        trainSecondsPerEpoch: spread(runs.map((r) => meanOf((r.history[scheme] ?? []).map((x) => x.seconds)))),
        evaluateSeconds: spread(runs.map((r) => Object.values(r.values[scheme] ?? {}).reduce((a, v) => a + (v.evaluate_seconds ?? 0), 0))),
      },
      peer: {
        bestValLoss: spread(peerRuns[scheme].map((r) => r.training.best.valLoss ?? NaN)),
        bestEpoch: peerRuns[scheme].map((r) => r.training.best.epoch),
        trainSecondsPerEpoch: spread(peerRuns[scheme].map((r) => r.training.seconds / Math.max(1, r.training.history.length))),
        evaluateSeconds: spread(peerRuns[scheme].map((r) => r.wallS.evaluate)),
        trainedModes: peerRuns[scheme][0]?.training.trainedModes,
        params: peerRuns[scheme][0]?.model.params,
      },
    };
  }
  clearInterval(sampler);
  loads.push(loadavg());
  const p0 = Object.values(peerRuns)[0]?.[0];
  const out = {
    benchmark: 'science',
    about: 'mtm-flow (graphs/quickstart.yaml through `mtm run`) vs a PyTorch port of the same recipe (bench/torch_science.py) on the same binned sessions; bits/spike per task on the test trials, each seed\'s figure the mean over sessions; difference = mtm-flow - peer',
    createdAt: new Date().toISOString(),
    budget: { epochs, quickstartDefaultEpochs: Number(defaults.epochs), batchSize: recipes[o.schemes[0]]?.sampler.batchSize, learningRate: recipes[o.schemes[0]]?.train.learningRate, seeds: o.seeds, quick: o.quick },
    recipe: recipes,
    sessions: p0?.sessions,
    binnedFolderMd5: firstHashes,
    results,
    gaps,
    perSession,
    training,
    checks: {
      sameWeightsBpsMaxAbsDiff: sameWeights,
      sameWeightsNote: 'the peer evaluates every mtm-flow model (its best checkpoint) with the port: equal bits/spike means the forward pass, prompts, causal attention and the four tasks are the same computation',
      stepParity,
      stepParityNote: 'the peer replays mtm-flow training steps (trainStep: Poisson NLL, gradients, global-norm clipping, AdamW with one global step count, one-cycle rate) from the same weights on the same masked batches of two sessions, every MtM mode, dropout off',
      sameBinnedSessionsEverySeed: sameData.every((x) => x.identical),
      oracleBpsMaxAbsDiff: oracleMaxAbsDiff,
      note: 'the oracle scores the simulator\'s true rates on the entries each task scored: equal on both sides means the same trials, split, neurons, regions, masks and bits/spike formula',
    },
    peer: { torchVersion: peer.torchVersion, python: peer.python, pythonVersion: peer.pythonVersion, source: peer.source, threads: p0?.threads, numpy: p0?.python.numpy, optimizer: 'mtm-flow\'s AdamW (one global step count), ported' },
    mtmFlow: { git, gitPerSeed: runs.map((r) => ({ seed: r.seed, ...r.git })), backendPerSeed: runs.map((r) => r.backend), backend: first.backend, command: `node bin/mtm.js run <work>/science-quickstart.yaml --seed <k> ${sets.map((s) => `--set ${s}`).join(' ')}`.replace(work, '<work>') },
    machine: { ...machine(), loadAverage: { start: loadStart.map((x) => round(x, 2)), end: loadavg().map((x) => round(x, 2)), max1min: round(Math.max(...loads.map((l) => l[0])), 2), samples: loads.length } },
    wallS: {
      total: round((performance.now() - started) / 1000, 1),
      mtmFlowRuns: runs.map((r) => round(r.wallS, 1)),
      peerRuns: Object.fromEntries(o.schemes.map((s) => [s, peerRuns[s].map((r) => round(r.wallS.total, 1))])),
    },
  };
  mkdirSync(join(o.out, '..'), { recursive: true });
  writeFileSync(o.out, JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${o.out}`);
  for (const task of TASKS) {
    for (const scheme of o.schemes) {
      const r = results[task][scheme] as { mtmFlow: Spread; peer: Spread; difference: number };
      console.log(`${task.padEnd(18)} ${scheme.padEnd(9)} mtm-flow ${r.mtmFlow.mean.toFixed(4)} (sd ${r.mtmFlow.sd.toFixed(4)})  peer ${r.peer.mean.toFixed(4)} (sd ${r.peer.sd.toFixed(4)})  diff ${r.difference.toFixed(4)}`);
    }
  }
  console.log(`oracle check: max |difference| ${oracleMaxAbsDiff.toExponential(2)}`);
  if (gaps.length) console.log(`mtm-flow trails the peer beyond the seed spread on: ${gaps.join('; ')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--write-step-parity');
  (at > 0 ? writeStepParity(resolve(process.argv[at + 1])) : main()).catch((e) => {
    console.error(`science: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
