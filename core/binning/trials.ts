// Trial selection, train/val/test split and per-trial behaviour targets (docs/method.md §2.4, §2.5).
import { createRng, hashString } from '../rng.ts';
import type { Split } from '../payloads.ts';

export interface TrialFilter {
  /** Attribute of the trials object that windows are aligned to. */
  alignEvent: string;
  /** Reaction time (firstMovement - stimOn) must lie in [min, max] seconds, both ends included. */
  reactionTimeRangeS: readonly [number, number];
  /** Attributes that must not be NaN (or missing) for a trial to be kept. */
  requireFinite: readonly string[];
  /** Drop no-go trials (choice == 0). */
  excludeNoChoice: boolean;
  /** Drop trials whose feedback comes more than this long after the go cue. */
  maxFeedbackDelayS: number;
}

export interface FilterResult {
  /** Indices of the kept trials, ascending. */
  kept: Int32Array;
  /** How many trials each rule removed (a trial counts under the first rule it fails). */
  dropped: Record<string, number>;
  total: number;
}

/** Number of trials in a trials object (length of its longest column). */
export function trialCount(trials: Record<string, ArrayLike<number>>): number {
  let n = 0;
  for (const v of Object.values(trials)) n = Math.max(n, v.length);
  return n;
}

/**
 * Applies the reference trial filter. A comparison involving a NaN never removes a trial by
 * itself (as pandas masks do): NaN is handled only by `requireFinite`, so a missing goCue does
 * not drop a trial through the feedback-delay rule.
 */
export function filterTrials(trials: Record<string, ArrayLike<number>>, f: TrialFilter, source = 'trials'): FilterResult {
  const n = trialCount(trials);
  const need = new Set([f.alignEvent, ...f.requireFinite]);
  for (const name of need) {
    if (!trials[name]) {
      throw new Error(`${source}: the trials object has no '${name}' attribute (needed by the trial filter; it has ${Object.keys(trials).join(', ') || 'none'})`);
    }
  }
  const col = (name: string) => trials[name] as ArrayLike<number> | undefined;
  const stimOn = col('stimOn_times');
  const move = col('firstMovement_times');
  const choice = col('choice');
  const feedback = col('feedback_times');
  const goCue = col('goCue_times');
  const align = col(f.alignEvent)!;
  const dropped: Record<string, number> = {
    nan: 0,
    noChoice: 0,
    reactionTime: 0,
    feedbackDelay: 0,
  };
  const kept: number[] = [];
  trialLoop: for (let i = 0; i < n; i++) {
    if (!Number.isFinite(align[i])) {
      dropped.nan++;
      continue;
    }
    for (const name of f.requireFinite) {
      if (!Number.isFinite(trials[name][i])) {
        dropped.nan++;
        continue trialLoop;
      }
    }
    if (f.excludeNoChoice && choice && choice[i] === 0) {
      dropped.noChoice++;
      continue;
    }
    if (stimOn && move) {
      const rt = move[i] - stimOn[i];
      if (rt < f.reactionTimeRangeS[0] || rt > f.reactionTimeRangeS[1]) {
        dropped.reactionTime++;
        continue;
      }
    }
    if (feedback && goCue && feedback[i] - goCue[i] > f.maxFeedbackDelayS) {
      dropped.feedbackDelay++;
      continue;
    }
    kept.push(i);
  }
  return { kept: Int32Array.from(kept), dropped, total: n };
}

/**
 * Seeded split of n trials: a shuffle, then the first round(n * train) go to train, the next
 * round(n * val) to val and the rest to test. The seed is mixed with the session id so each
 * session's split does not depend on which other sessions are processed or in what order.
 */
export function splitTrials(n: number, fractions: readonly [number, number, number], seed: number, sessionId: string): Split[] {
  const [ft, fv, fs] = fractions;
  const sum = ft + fv + fs;
  if (!(ft >= 0 && fv >= 0 && fs >= 0) || Math.abs(sum - 1) > 1e-9) {
    throw new Error(`split fractions ${fractions.join('/')} must be non-negative and sum to 1`);
  }
  const nTrain = Math.round(n * ft);
  const nVal = Math.min(n - nTrain, Math.round(n * fv));
  const rng = createRng(hashString(sessionId, seed >>> 0));
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const split: Split[] = new Array(n);
  order.forEach((trial, rank) => {
    split[trial] = rank < nTrain ? 'train' : rank < nTrain + nVal ? 'val' : 'test';
  });
  return split;
}

/**
 * Per-trial behaviour targets of the kept trials:
 * - choice: the ALF value (+1 / -1; -1 is a rightward, counter-clockwise turn);
 * - block: probabilityLeft (0.2 / 0.5 / 0.8);
 * - reward: 1 when feedbackType == 1, else 0;
 * - contrast: signed, contrastRight - contrastLeft with a missing side counted as 0, so that
 *   positive means a stimulus on the right (IBL's `signed_contrast`);
 * - reactionTimeS: firstMovement - stimOn.
 * Columns whose source attribute is missing are left out.
 */
export function trialBehaviour(trials: Record<string, ArrayLike<number>>, kept: Int32Array): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  const pick = (f: (i: number) => number) => Float64Array.from(kept, (i) => f(i));
  const t = trials;
  if (t.choice) out.choice = pick((i) => t.choice[i]);
  if (t.probabilityLeft) out.block = pick((i) => t.probabilityLeft[i]);
  if (t.feedbackType) out.reward = pick((i) => (t.feedbackType[i] === 1 ? 1 : 0));
  if (t.contrastLeft || t.contrastRight) {
    const z = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : 0);
    out.contrast = pick((i) => z(t.contrastRight?.[i]) - z(t.contrastLeft?.[i]));
  }
  if (t.firstMovement_times && t.stimOn_times) out.reactionTimeS = pick((i) => t.firstMovement_times[i] - t.stimOn_times[i]);
  return out;
}
