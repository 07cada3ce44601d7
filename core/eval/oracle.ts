// The oracle of docs/method.md §2.6, §5.3: a simulated session's true rates scored on exactly the entries a
// task scored, with the same bits/spike function, and the model/oracle ratio.
//
// True rates do not depend on the input, so a task's masks matter only through which entries
// they score; reusing the task result's `scored` array keeps the two figures comparable entry for
// entry (same trials, same bins, same neurons, same exclusions).
import type { BinnedSession } from '../payloads.ts';
import { bitsPerSpike, type BpsResult } from './bps.ts';
import { gatherTrials, type TaskResult } from './tasks.ts';

export interface OracleResult {
  bps: BpsResult;
  /** Model mean bps / oracle mean bps (NaN when the oracle's is not positive). */
  ratio: number;
  /** The same ratio of the pooled figures. */
  pooledRatio: number;
}

const ratioOf = (model: number, oracle: number) => (oracle > 0 && Number.isFinite(model) ? model / oracle : NaN);

/** Scores `trueRates` (expected counts per bin) where `result` scored; undefined when the session has none. */
export function oracleForTask(s: BinnedSession, result: TaskResult): OracleResult | undefined {
  if (!s.trueRates) return undefined;
  const TN = s.nBins * s.nNeurons;
  if (s.trueRates.length !== s.nTrials * TN) {
    throw new Error(`session ${s.sessionId}: trueRates has ${s.trueRates.length} entries, expected nTrials x nBins x nNeurons = ${s.nTrials * TN}`);
  }
  const n = result.rows.length;
  const bps = bitsPerSpike({
    counts: gatherTrials(s.counts, result.rows, TN),
    predicted: gatherTrials(s.trueRates, result.rows, TN),
    nTrials: n,
    nBins: s.nBins,
    nNeurons: s.nNeurons,
    mask: result.scored,
  });
  return { bps, ratio: ratioOf(result.bps.mean, bps.mean), pooledRatio: ratioOf(result.bps.pooled, bps.pooled) };
}
