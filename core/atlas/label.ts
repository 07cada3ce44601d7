// Cluster -> channel -> Allen id, and Allen id -> acronyms for a session's neurons (docs/method.md §2.3).
import type { NeuronInfo, ProbeSpikes } from '../payloads.ts';
import { UNLOCATED_ID, type AllenRegions, type AtlasLevel, type LabelStatus } from './regions.ts';

/**
 * The Allen id of each cluster row of a probe: the cluster-level id when the session gives one
 * (clusters.brainLocationIds_ccf_2017), else the id of the cluster's channel
 * (channels.brainLocationIds_ccf_2017[clusters.channels]), else UNLOCATED_ID.
 */
export function clusterAtlasIds(p: ProbeSpikes): Int32Array {
  const n = p.clusterIds.length;
  const out = new Int32Array(n).fill(UNLOCATED_ID);
  for (let i = 0; i < n; i++) {
    if (p.clusterAtlasIds && i < p.clusterAtlasIds.length) {
      out[i] = p.clusterAtlasIds[i];
    } else if (p.clusterChannels && p.channelAtlasIds && i < p.clusterChannels.length) {
      const ch = p.clusterChannels[i];
      if (ch >= 0 && ch < p.channelAtlasIds.length) out[i] = p.channelAtlasIds[ch];
    }
  }
  return out;
}

export interface LabelCounts {
  ok: number;
  void: number;
  unknown: number;
  unlocated: number;
  /** Distinct ids that are not in the structure tree. */
  unknownIds: number[];
}

/**
 * Fills acronym (at `level`), beryl and cosmos of each neuron from its atlasId. Returns new
 * NeuronInfo objects and how many fell in each case.
 */
export function labelNeurons(neurons: readonly NeuronInfo[], regions: AllenRegions, level: AtlasLevel = 'allen'): { neurons: NeuronInfo[]; counts: LabelCounts } {
  const counts: LabelCounts = { ok: 0, void: 0, unknown: 0, unlocated: 0, unknownIds: [] };
  const unknownIds = new Set<number>();
  const out = neurons.map((n) => {
    const l = regions.label(n.atlasId);
    counts[l.status as LabelStatus]++;
    if (l.status === 'unknown') unknownIds.add(n.atlasId);
    const acronym = level === 'allen' ? l.allen : level === 'beryl' ? l.beryl : l.cosmos;
    return { ...n, acronym, beryl: l.beryl, cosmos: l.cosmos };
  });
  counts.unknownIds = [...unknownIds].sort((a, b) => a - b);
  return { neurons: out, counts };
}
