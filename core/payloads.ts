// The closed set of payload types that travel on graph edges (docs/architecture.md §4.2).
// Every port names one of these; the loader refuses an edge whose two ends disagree.
import type { MaskedBatch } from './masking/types.ts';
import type { Split } from './split.ts';

export const PAYLOAD_TYPES = {
  'session-ref': 'a recording session to process: its id and folder in a ONE-layout cache',
  'spike-trains': 'spike times and clusters per probe of one session, with its trials and cluster tables',
  'binned-session': 'trial-aligned binned spike counts (trials x bins x neurons) with neuron, trial and behaviour tables',
  'masked-batch': 'a batch of masked counts with its loss mask, masking mode and causal flag',
  'model': 'a trained model: where its files are and what it was trained on',
  'predictions': 'predicted log-rates for a session or a stream of bins',
  'metrics': 'named numbers measured on one session or run',
  'report': 'a written report: its folder and the files in it',
  'artifact': 'a file or folder that a stage wrote',
} as const;

export type PayloadType = keyof typeof PAYLOAD_TYPES;

export function isPayloadType(x: unknown): x is PayloadType {
  return typeof x === 'string' && Object.hasOwn(PAYLOAD_TYPES, x);
}

/** A session to load, as found in a ONE cache (by eid) or given as a folder path. */
export interface SessionRef {
  kind: 'session-ref';
  /** Stable id used everywhere downstream: the eid when known, else the folder's relative path. */
  sessionId: string;
  eid?: string;
  /** Absolute path of the session folder (<lab>/Subjects/<subject>/<date>/<number>). */
  path: string;
  /** Root of the ONE cache the session lives in, when known. */
  cacheDir?: string;
}

/** Spikes of one probe, straight from the ALF files. */
export interface ProbeSpikes {
  probe: string;
  /** Spike times in seconds, sorted ascending. */
  times: Float64Array;
  /** Cluster id of each spike. */
  clusters: Int32Array;
  /** One row per cluster: index i describes cluster id clusterIds[i]. */
  clusterIds: Int32Array;
  clusterChannels?: Int32Array;
  clusterDepthsUm?: Float64Array;
  /** 1 where the spike sorter's metrics call the unit good (clusters.metrics label == 1). */
  clusterGood?: Uint8Array;
  /** Allen CCF id per cluster, when the session gives one directly. */
  clusterAtlasIds?: Int32Array;
  /** Allen CCF id per channel (channels.brainLocationIds_ccf_2017). */
  channelAtlasIds?: Int32Array;
}

/** A per-session time series, e.g. wheel position or whisker motion energy. */
export interface TimeSeries {
  times: Float64Array;
  values: Float64Array;
}

export interface SpikeTrains {
  kind: 'spike-trains';
  sessionId: string;
  eid?: string;
  path: string;
  probes: ProbeSpikes[];
  /** The session's trials object, one array per ALF attribute (stimOn_times, choice, ...). */
  trials: Record<string, Float64Array>;
  wheelPosition?: TimeSeries;
  whiskerMotionEnergy?: TimeSeries;
}

// Split is a leaf type (core/split.ts), so masking/types.ts, which this file imports, can use it too.
export type { Split };

export interface NeuronInfo {
  probe: string;
  clusterId: number;
  /** Allen CCF id, or -1 when the unit has no location. */
  atlasId: number;
  acronym: string;
  beryl: string;
  cosmos: string;
  depthUm: number;
  good: boolean;
}

export interface BinnedTrials {
  /** Index of each kept trial in the session's trials object. */
  trialIndex: Int32Array;
  split: Split[];
  /** Per-trial behaviour columns (choice, block, reward, contrast, ...). */
  columns: Record<string, Float64Array>;
}

export interface BinnedSession {
  kind: 'binned-session';
  sessionId: string;
  eid?: string;
  binSizeMs: number;
  /** Window around the alignment event, seconds (e.g. [-0.5, 1.5]). */
  windowS: [number, number];
  nTrials: number;
  nBins: number;
  nNeurons: number;
  /** Row-major [trial][bin][neuron] spike counts. */
  counts: Int32Array;
  trials: BinnedTrials;
  neurons: NeuronInfo[];
  /** Per-bin behaviour, each row-major [trial][bin] (wheelSpeed, whiskerMotionEnergy, ...). */
  perBin: Record<string, Float32Array>;
  /** Ground-truth rates in spikes per bin, [trial][bin][neuron], for simulated sessions only. */
  trueRates?: Float32Array;
}

export type { MaskedBatch } from './masking/types.ts';

/** A session a model reads and predicts. Per-session weights (stitchers, tokens) are keyed by sessionId. */
export interface SessionSpec {
  sessionId: string;
  nNeurons: number;
  nBins: number;
  /** Region label per neuron, for architectures that use regions. */
  regions?: string[];
  /**
   * Mean spike count per bin of each neuron over the session's training trials (see
   * trainingMeanCounts in architecture.ts). Architectures initialise their per-neuron readout from it: NDT1 sets
   * each neuron's readout bias to its log, so training starts from every neuron's own mean rate.
   * Optional: without it the readout keeps its default init.
   */
  meanCounts?: number[];
}

/** A trained model on disk (tfjs layout: model.json + weights.bin) and what it was trained on. */
export interface ModelRef {
  kind: 'model';
  /** Folder holding model.json and weights.bin; its metadata repeats the fields below. */
  path: string;
  /** Architecture name ('ndt1'): look it up in ctx.architectures to rebuild the model. */
  architecture: string;
  /** The architecture's config with every default filled. */
  config: Record<string, unknown>;
  /** Sessions the model has per-session weights for, in the order they were added. */
  sessions: SessionSpec[];
  /** Which variant it is (e.g. 'mtm', 'temporal'). */
  label?: string;
  /** 1-based epoch whose weights these are (the best one), and the loss that chose it. */
  epoch: number;
  score: number;
  scoreOn: 'val' | 'train';
  trainLoss: number;
  valLoss?: number;
}

export interface Metrics {
  kind: 'metrics';
  /** Session the numbers describe, or 'all' for a run-level summary. */
  sessionId: string;
  /** Which model or variant produced them (e.g. 'mtm', 'temporal'). */
  label?: string;
  values: Record<string, number>;
}

export interface Artifact {
  kind: 'artifact';
  path: string;
  /** What the file or folder holds, in a few words. */
  description: string;
  sessionId?: string;
}

/** A written report: the folder and the files in it (report and sweep-report). */
export interface ReportRef {
  kind: 'report';
  path: string;
  files: string[];
}

/** Predicted log-rates. No built-in stage carries this type yet, so its fields are not fixed. */
export interface Predictions {
  kind: 'predictions';
  sessionId?: string;
  [field: string]: unknown;
}

/**
 * The value each payload type carries, so a stage's inputs and outputs are typed from its port
 * declarations (docs/architecture.md §4.2).
 */
export interface PayloadMap {
  'session-ref': SessionRef;
  'spike-trains': SpikeTrains;
  'binned-session': BinnedSession;
  'masked-batch': MaskedBatch;
  'model': ModelRef;
  'predictions': Predictions;
  'metrics': Metrics;
  'report': ReportRef;
  'artifact': Artifact;
}

/** The value a port of payload type T carries (fails to compile if PayloadMap lacks a type). */
export type PayloadOf<T extends PayloadType> = PayloadMap[T];

/** A short label for an item in logs and error messages ("session 4a7f…", "batch 12"). */
export function describeItem(item: unknown): string {
  if (item && typeof item === 'object') {
    const o = item as Record<string, unknown>;
    const kind = typeof o.kind === 'string' ? o.kind : 'item';
    if (typeof o.sessionId === 'string') return `${kind} ${o.sessionId}`;
    if (typeof o.path === 'string') return `${kind} ${o.path}`;
    return kind;
  }
  return String(item);
}
