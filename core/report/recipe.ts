// How a report's models were made, read back from the run's resolved graph: per trained model the
// architecture and its config, the masking scheme and ratios of its training batches, the
// optimiser, and the budget (epochs, batch size, steps and seconds actually run), with the graph
// seed. A reader of report.md can then rerun or compare a result without opening the graph.
//
// Decisions:
// - Only `train-model` nodes are recipes; their batches are the sampler wired to their `train`
//   input (absent when the graph feeds them some other way: then only the optimiser is shown).
// - Config fields the graph left out are shown as the graph resolved them (the architecture's
//   defaults are applied later, inside the model): the saved model's metadata has the full config.
// - Steps and seconds come from the training metrics when the report received them; a model
//   resumed from a checkpoint counts the seconds of this run only.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface TrainingRecipe {
  node: string;
  label: string;
  architecture: string;
  config: Record<string, unknown>;
  learningRate: number;
  weightDecay: number;
  warmupFraction: number;
  clipNorm: number;
  init?: string;
  scheme?: string;
  epochs?: number;
  batchSize?: number;
  /** The sampler's ratios and time-mask shape, as resolved. */
  masking?: Record<string, unknown>;
}

export interface RecipeSummary {
  seed: number;
  recipes: TrainingRecipe[];
}

interface NodeDoc {
  stage?: string;
  in?: Record<string, unknown>;
  params?: Record<string, unknown>;
}

const MASKING_FIELDS = ['temporalRatio', 'neuronRatio', 'causalRatio', 'intraRegionRatio', 'timeSpan', 'causalForecast', 'maxTrials'];

/** Recipes of every train-model node of a resolved graph (graph.resolved.yaml's text). */
export function recipesFromResolvedGraph(text: string): RecipeSummary {
  const doc = parse(text) as { seed?: number; nodes?: Record<string, NodeDoc> };
  const nodes = doc.nodes ?? {};
  const recipes: TrainingRecipe[] = [];
  for (const [id, n] of Object.entries(nodes)) {
    if (!n.stage?.startsWith('train-model@')) continue;
    const p = n.params ?? {};
    const train = n.in?.train;
    const samplerId = typeof train === 'string' ? train.split('.')[0] : undefined;
    const sampler = samplerId ? nodes[samplerId] : undefined;
    const sp = sampler?.stage?.startsWith('masking-sampler@') ? sampler.params ?? {} : undefined;
    recipes.push({
      node: id,
      label: (p.label as string) || id,
      architecture: String(p.architecture ?? ''),
      config: (p.config as Record<string, unknown>) ?? {},
      learningRate: Number(p.learningRate),
      weightDecay: Number(p.weightDecay),
      warmupFraction: Number(p.warmupFraction),
      clipNorm: Number(p.clipNorm),
      init: p.init ? String(p.init) : undefined,
      scheme: sp ? String(sp.mode) : undefined,
      epochs: sp ? Number(sp.epochs) : undefined,
      batchSize: sp ? Number(sp.batchSize) : undefined,
      masking: sp ? Object.fromEntries(MASKING_FIELDS.filter((k) => k in sp).map((k) => [k, sp[k]])) : undefined,
    });
  }
  return { seed: Number(doc.seed ?? 0), recipes };
}

/** Steps and training seconds per model label, from train-model's per-epoch metrics. */
export function trainingBudgets(metrics: readonly { label?: string; values?: Record<string, number> }[]): Map<string, { epochs: number; steps: number; seconds: number }> {
  const out = new Map<string, { epochs: number; steps: number; seconds: number }>();
  for (const m of metrics) {
    const v = m.values;
    if (!m.label || !v || !Number.isFinite(v.epoch) || !Number.isFinite(v.step)) continue;
    const b = out.get(m.label) ?? { epochs: 0, steps: 0, seconds: 0 };
    b.epochs = Math.max(b.epochs, v.epoch);
    b.steps = Math.max(b.steps, v.step);
    b.seconds += Number.isFinite(v.seconds) ? v.seconds : 0;
    out.set(m.label, b);
  }
  return out;
}

const fmt = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

/** The report.md section: one table row per model, then the seed. */
export function recipeMarkdown(s: RecipeSummary, budgets: Map<string, { epochs: number; steps: number; seconds: number }> = new Map()): string[] {
  if (!s.recipes.length) return [];
  const lines = [
    '## Recipe and budget',
    '',
    '| model | architecture and config | batches | optimiser | budget run |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of s.recipes) {
    const masking = r.masking ? Object.entries(r.masking).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : '';
    const batches = r.scheme ? `${r.scheme} masking, ${r.epochs} epochs of batch ${r.batchSize}${masking ? ` (${masking})` : ''}` : 'not from a masking sampler';
    const opt = `AdamW lr ${r.learningRate}, weight decay ${r.weightDecay}, one-cycle cosine with ${Math.round(r.warmupFraction * 100)} % warm-up, clip ${r.clipNorm}${r.init ? `, fine-tuned from ${r.init}` : ''}`;
    const b = budgets.get(r.label);
    const run = b ? `${b.epochs} epochs, ${b.steps} steps, ${b.seconds.toFixed(0)} s of training` : 'n/a';
    lines.push(`| ${r.label} | ${r.architecture} ${fmt(r.config)} | ${batches} | ${opt} | ${run} |`);
  }
  lines.push('', `Graph seed: ${s.seed} (rerun with \`--seed\` for another draw of data split, masks, initial weights and dropout).`, '');
  return lines;
}

/** The section for a run directory, from its graph.resolved.yaml ('' when there is none), with a leading blank line. */
export function recipeSection(runRoot: string, metrics: readonly { label?: string; values?: Record<string, number> }[]): string {
  const file = join(runRoot, 'graph.resolved.yaml');
  if (!existsSync(file)) return '';
  const lines = recipeMarkdown(recipesFromResolvedGraph(readFileSync(file, 'utf8')), trainingBudgets(metrics));
  return lines.length ? '\n' + lines.join('\n') : '';
}
