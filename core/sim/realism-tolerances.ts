// How close the simulator is held to real recordings, per statistic of the realism table
// (realism-data.ts): a number bounds the distance; a range bounds the simulated value itself,
// for statistics with no real counterpart in the fixtures. Statistics not listed are reported
// only (bench/realism.ts): where the simulator departs by design (fewer units per probe than a
// real insertion, so fewer regions and larger shares) or where the comparison is too noisy.
// The bounds leave room for the sampling noise of a small simulated set (two sessions of ~120
// units: a KS statistic moves by ~0.09 on 240 units) and are well inside the departures the
// simulator had before it was fitted to these data (listed per line as "was").
import type { RealismRow } from './realism-data.ts';

export type Tolerance = number | { simMin?: number; simMax?: number };

export const REALISM_TOLERANCES: Record<string, Tolerance> = {
  // Firing rates of active units (KS was 0.15; < 1 Hz was 0.11 off, < 0.1 Hz 0.075 off).
  'rate distribution (KS)': 0.13,
  'rate q10 (Hz)': 0.45,
  'rate q50 (Hz)': 0.15,
  'rate q90 (Hz)': 0.15,
  'sd ln(rate)': 0.4,
  'fraction < 1 Hz': 0.08,
  'fraction < 0.1 Hz': 0.05,
  // Good units (was 0.36 against 0.17).
  'good-unit fraction': 0.06,
  // Channels in the brain (was 0.82 against 1.0).
  'channels inside the brain (median)': 0.06,
  // Over-dispersion and refractoriness (Fano factor in 1 s was 1.3 against 2.8; ISIs under
  // 1.5 ms were 1.4 % against 0.03 %).
  'Fano factor 20 ms (median)': 0.06,
  'Fano factor 100 ms (median)': 0.12,
  'Fano factor 1 s (median)': 0.7,
  'Fano factor 10 s (median)': 2.5,
  'ISI < 1.5 ms (mean fraction)': 0.002,
  'ISI CV (median)': 0.2,
  'pair correlation of counts, 100 ms': 0.03,
  'pair correlation of counts, 1 s': 0.05,
  // Behaviour (stimulus to feedback KS was 0.59, feedback to next stimulus 0.80).
  'fraction correct': 0.06,
  'fraction correct, contrast 0': 0.15,
  'stimulus to feedback (KS)': 0.12,
  'stimulus to feedback (median s)': 0.06,
  'feedback to next stimulus (KS)': 0.2,
  'feedback to next stimulus (median s)': 0.3,
};

export function withinTolerance(row: RealismRow, tol: Tolerance): boolean {
  if (typeof tol === 'number') return row.distance !== null && Number.isFinite(row.distance) && row.distance <= tol;
  if (!Number.isFinite(row.sim)) return false;
  return (tol.simMin === undefined || row.sim >= tol.simMin) && (tol.simMax === undefined || row.sim <= tol.simMax);
}
