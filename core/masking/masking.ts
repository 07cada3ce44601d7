// Masking on the data, for any architecture (docs/method.md §3): draws which (trial, bin, neuron)
// entries are zeroed in the input and which the loss scores, per masking mode.
//
// Edge cases, decided here:
// - A Bernoulli draw that selects nothing is given one entry chosen uniformly (force, not redraw:
//   one extra draw, no loop, and the distribution only changes on the rare empty draws). A draw
//   that selects every bin/neuron of a trial has one chosen uniformly put back, when there are at
//   least two, so the model always has something to predict from.
// - Random draws are per trial (each trial of a batch gets its own bins/neurons); the region of
//   the region modes is chosen once per batch, uniformly among the distinct labels present.
// - `inter-region` needs at least two regions (masking the only region masks everything). With
//   one, the batch is masked in `neuron` mode and says so in `mode`, so the model's prompt and
//   any score stay honest. `mtm` then draws among the three modes that apply.
// - `token` cells are blocks of `tokenNeurons` consecutive neurons in the session's order (as
//   NDT2 patches them without a per-session input projection; the last block may be shorter) at
//   one bin. Each cell of a trial is a Bernoulli draw over the trial's bins x blocks, with the
//   at-least-one / not-all rule over those cells.
import type { Rng } from '../rng.ts';
import { DEFAULT_RATIOS, DEFAULT_TIME_SHAPE, MTM_MODES, type BatchShape, type MaskDraw, type MaskingMode, type MaskingScheme, type MaskRatios, type TimeMaskShape } from './types.ts';

/** Sorted distinct region labels. */
export function distinctRegions(regions: readonly string[]): string[] {
  return [...new Set(regions)].sort();
}

/** The modes a scheme can produce for this set of regions (`mtm`: those it draws among). */
export function applicableModes(scheme: MaskingScheme, regions: readonly string[]): MaskingMode[] {
  const multiRegion = distinctRegions(regions).length >= 2;
  if (scheme === 'mtm') return MTM_MODES.filter((m) => m !== 'inter-region' || multiRegion);
  if (scheme === 'inter-region' && !multiRegion) return ['neuron'];
  return [scheme];
}

/** The file comment's rule for a selection of n items, `count` of them selected: force one in, or put one back. */
function atLeastOneNotAll(n: number, count: number, rng: Rng, out: Uint8Array, offset: number): Uint8Array {
  if (n > 0 && count === 0) out[offset + rng.int(n)] = 1;
  else if (n >= 2 && count === n) out[offset + rng.int(n)] = 0;
  return out;
}

/**
 * Bernoulli(p) selection of n items, with at least one selected and, when n >= 2, at least one
 * left out (see the file comment). Writes into `out` at `offset`.
 */
export function bernoulliSubset(n: number, p: number, rng: Rng, out: Uint8Array = new Uint8Array(n), offset = 0): Uint8Array {
  let count = 0;
  for (let i = 0; i < n; i++) {
    const hit = rng.next() < p ? 1 : 0;
    out[offset + i] = hit;
    count += hit;
  }
  return atLeastOneNotAll(n, count, rng, out, offset);
}

/**
 * Spans of consecutive bins: each bin starts a span with probability p / E[length], lengths
 * uniform in 1..maxSpan, so about a fraction p of the bins is covered (less where spans overlap).
 * Same at-least-one / not-all rule as bernoulliSubset. maxSpan 1 is exactly bernoulliSubset.
 */
export function spanSubset(n: number, p: number, maxSpan: number, rng: Rng, out: Uint8Array = new Uint8Array(n), offset = 0): Uint8Array {
  if (maxSpan <= 1) return bernoulliSubset(n, p, rng, out, offset);
  const start = Math.min(1, p / ((maxSpan + 1) / 2));
  out.fill(0, offset, offset + n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (rng.next() >= start) continue;
    const len = 1 + rng.int(maxSpan);
    for (let j = i; j < Math.min(n, i + len); j++) {
      count += out[offset + j] ? 0 : 1;
      out[offset + j] = 1;
    }
  }
  return atLeastOneNotAll(n, count, rng, out, offset);
}

/** A forecast: every bin from a cut point on selected, the cut uniform in 1..n-1 (n >= 2; n = 1 selects the bin). */
export function forecastSubset(n: number, rng: Rng, out: Uint8Array = new Uint8Array(n), offset = 0): Uint8Array {
  const cut = n >= 2 ? 1 + rng.int(n - 1) : 0;
  out.fill(0, offset, offset + cut);
  out.fill(1, offset + cut, offset + n);
  return out;
}

/**
 * [trial][bin][neuron] mask that is 1 where the entry's bin is selected (binSel [trial][bin]) or
 * its neuron is (neuronSel [trial][neuron]). Either selection may be omitted.
 */
export function composeMask(shape: BatchShape, binSel?: Uint8Array, neuronSel?: Uint8Array): Uint8Array {
  const { trials, bins, neurons } = shape;
  const out = new Uint8Array(trials * bins * neurons);
  for (let t = 0; t < trials; t++) {
    for (let b = 0; b < bins; b++) {
      const row = (t * bins + b) * neurons;
      if (binSel && binSel[t * bins + b]) {
        out.fill(1, row, row + neurons);
        continue;
      }
      if (neuronSel) for (let n = 0; n < neurons; n++) out[row + n] = neuronSel[t * neurons + n];
    }
  }
  return out;
}

function checkShape(shape: BatchShape, regions: readonly string[]): void {
  for (const k of ['trials', 'bins', 'neurons'] as const) {
    if (!Number.isInteger(shape[k]) || shape[k] < 1) throw new Error(`masking: ${k} must be a positive integer, got ${shape[k]}`);
  }
  if (regions.length !== shape.neurons) throw new Error(`masking: ${regions.length} region labels for ${shape.neurons} neurons`);
}

/**
 * Draws one batch's mask. `regions` labels each neuron; `ratios` override the defaults of docs/method.md §3.1.
 * Same rng state in, same mask out.
 */
export function sampleMask(
  shape: BatchShape, regions: readonly string[], scheme: MaskingScheme, rng: Rng, ratios: Partial<MaskRatios> = {}, time: Partial<TimeMaskShape> = {},
): MaskDraw {
  checkShape(shape, regions);
  const { r, ts } = maskSettings(ratios, time);
  const modes = applicableModes(scheme, regions);
  const mode = modes.length === 1 ? modes[0] : modes[rng.int(modes.length)];
  switch (mode) {
    case 'temporal':
    case 'causal':
      return timeDraw(shape, mode, mode === 'temporal' ? r.temporal : r.causal, ts, rng);
    case 'neuron': {
      const m = composeMask(shape, undefined, neuronsPerTrial(shape, r.neuron, rng));
      return { mode, causal: false, masked: m, lossMask: m };
    }
    case 'inter-region':
      return interRegionDraw(shape, regions, rng);
    case 'token':
      return tokenDraw(shape, r.token, ts.tokenNeurons, rng);
    case 'intra-region':
      return intraRegionDraw(shape, regions, r.intraRegion, rng);
  }
}

/** The ratios and time shape with their defaults, each checked in range. */
function maskSettings(ratios: Partial<MaskRatios>, time: Partial<TimeMaskShape>): { r: MaskRatios; ts: TimeMaskShape } {
  const r = { ...DEFAULT_RATIOS, ...ratios };
  for (const [k, v] of Object.entries(r)) if (!(v >= 0 && v <= 1)) throw new Error(`masking: ratio ${k} must be in [0, 1], got ${v}`);
  const ts = { ...DEFAULT_TIME_SHAPE, ...time };
  if (!(Number.isInteger(ts.span) && ts.span >= 1)) throw new Error(`masking: span must be an integer >= 1, got ${ts.span}`);
  if (!(ts.forecast >= 0 && ts.forecast <= 1)) throw new Error(`masking: forecast must be in [0, 1], got ${ts.forecast}`);
  if (!(Number.isInteger(ts.tokenNeurons) && ts.tokenNeurons >= 1)) throw new Error(`masking: tokenNeurons must be an integer >= 1, got ${ts.tokenNeurons}`);
  return { r, ts };
}

/** Temporal and causal modes: bins per trial (spans, or for causal optionally a forecast), every neuron of them. */
function timeDraw(shape: BatchShape, mode: 'temporal' | 'causal', p: number, ts: TimeMaskShape, rng: Rng): MaskDraw {
  const { trials, bins } = shape;
  const sel = new Uint8Array(trials * bins);
  for (let t = 0; t < trials; t++) {
    // The forecast draw is only made when enabled, so the default keeps its random stream.
    if (mode === 'causal' && ts.forecast > 0 && rng.next() < ts.forecast) forecastSubset(bins, rng, sel, t * bins);
    else spanSubset(bins, p, ts.span, rng, sel, t * bins);
  }
  const m = composeMask(shape, sel);
  return { mode, causal: mode === 'causal', masked: m, lossMask: m };
}

/** A Bernoulli(p) selection of neurons per trial, [trial][neuron]. */
function neuronsPerTrial(shape: BatchShape, p: number, rng: Rng): Uint8Array {
  const { trials, neurons: n } = shape;
  const sel = new Uint8Array(trials * n);
  for (let t = 0; t < trials; t++) bernoulliSubset(n, p, rng, sel, t * n);
  return sel;
}

/** Inter-region mode: every neuron of one region, chosen for the batch. */
function interRegionDraw(shape: BatchShape, regions: readonly string[], rng: Rng): MaskDraw {
  const { trials, neurons } = shape;
  const names = distinctRegions(regions);
  const region = names[rng.int(names.length)];
  const sel = new Uint8Array(trials * neurons);
  for (let t = 0; t < trials; t++) for (let n = 0; n < neurons; n++) sel[t * neurons + n] = regions[n] === region ? 1 : 0;
  const m = composeMask(shape, undefined, sel);
  return { mode: 'inter-region', causal: false, masked: m, lossMask: m, region };
}

/** Token mode: a Bernoulli draw per trial over its (bin, block of tokenNeurons neurons) cells. */
function tokenDraw(shape: BatchShape, p: number, tokenNeurons: number, rng: Rng): MaskDraw {
  const { trials, bins, neurons } = shape;
  const blocks = Math.ceil(neurons / tokenNeurons);
  const cells = bins * blocks;
  const sel = new Uint8Array(cells);
  const m = new Uint8Array(trials * bins * neurons);
  for (let t = 0; t < trials; t++) {
    bernoulliSubset(cells, p, rng, sel);
    for (let c = 0; c < cells; c++) {
      if (!sel[c]) continue;
      const b = Math.floor(c / blocks);
      const n0 = (c % blocks) * tokenNeurons;
      const row = (t * bins + b) * neurons;
      m.fill(1, row + n0, row + Math.min(neurons, n0 + tokenNeurons));
    }
  }
  return { mode: 'token', causal: false, masked: m, lossMask: m };
}

/** Intra-region mode: one region for the batch; per trial everything outside it zeroed, plus a Bernoulli pick inside it, which alone is scored. */
function intraRegionDraw(shape: BatchShape, regions: readonly string[], p: number, rng: Rng): MaskDraw {
  const { trials, neurons } = shape;
  const names = distinctRegions(regions);
  const region = names[rng.int(names.length)];
  const inside: number[] = [];
  for (let n = 0; n < neurons; n++) if (regions[n] === region) inside.push(n);
  const scored = new Uint8Array(trials * neurons);
  const zeroed = new Uint8Array(trials * neurons);
  const pick = new Uint8Array(inside.length);
  for (let t = 0; t < trials; t++) {
    zeroed.fill(1, t * neurons, (t + 1) * neurons);
    bernoulliSubset(inside.length, p, rng, pick);
    inside.forEach((n, i) => {
      scored[t * neurons + n] = pick[i];
      zeroed[t * neurons + n] = pick[i];
    });
  }
  return { mode: 'intra-region', causal: false, masked: composeMask(shape, undefined, zeroed), lossMask: composeMask(shape, undefined, scored), region };
}

/** The model input: counts with every masked entry set to 0. */
export function applyMask(counts: ArrayLike<number>, masked: Uint8Array): Float32Array {
  if (counts.length !== masked.length) throw new Error(`masking: ${counts.length} counts for a mask of ${masked.length} entries`);
  const out = new Float32Array(counts.length);
  for (let i = 0; i < out.length; i++) out[i] = masked[i] ? 0 : counts[i];
  return out;
}
