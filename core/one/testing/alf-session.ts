// Tiny but valid ALF sessions for tests: spikes and clusters per probe, trials, wheel, plus files the loader does not need.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodeNpy } from '../../io/npy.ts';
import { createRng } from '../../rng.ts';
import type { GeneratedFile } from './alyx-server.ts';

export interface TinySessionOptions {
  probes?: string[];
  /** Put each probe's sorting in alf/<probe>/<sorter>/ as well as alf/<probe>/. */
  sorter?: string;
  nClusters?: number;
  nSpikes?: number;
  nTrials?: number;
  seed?: number;
}

/** The files of one small session, keyed by their path inside the session folder. */
export function tinySessionFiles(o: TinySessionOptions = {}): GeneratedFile[] {
  const rng = createRng(o.seed ?? 1);
  const probes = o.probes ?? ['probe00'];
  const nClusters = o.nClusters ?? 5;
  const nSpikes = o.nSpikes ?? 400;
  const nTrials = o.nTrials ?? 12;
  const files: GeneratedFile[] = [];
  const add = (relativePath: string, bytes: Uint8Array) => files.push({ relativePath, bytes });
  probes.forEach((probe, pi) => {
    const times = new Float64Array(nSpikes);
    let t = 0;
    for (let i = 0; i < nSpikes; i++) times[i] = t += 0.001 + rng.next() * 0.1;
    const clusters = Int32Array.from({ length: nSpikes }, () => rng.int(nClusters));
    const channels = Int32Array.from({ length: nClusters }, (_, i) => (i * 7 + pi) % 384);
    const depths = Float64Array.from(channels, (c) => 20 * Math.floor(c / 2));
    const atlas = Int32Array.from({ length: 384 }, (_, c) => (c < 192 ? 385 : 394));
    const collections = o.sorter ? [`alf/${probe}`, `alf/${probe}/${o.sorter}`] : [`alf/${probe}`];
    for (const col of collections) {
      add(`${col}/spikes.times.npy`, encodeNpy(times, [nSpikes]));
      add(`${col}/spikes.clusters.npy`, encodeNpy(Float64Array.from(clusters), [nSpikes], { dtype: '<i8' }));
      add(`${col}/clusters.channels.npy`, encodeNpy(channels, [nClusters]));
      add(`${col}/clusters.depths.npy`, encodeNpy(depths, [nClusters]));
      add(`${col}/channels.brainLocationIds_ccf_2017.npy`, encodeNpy(atlas, [384]));
      // Not read by the loader: must not be downloaded.
      add(`${col}/spikes.amps.npy`, encodeNpy(Float64Array.from({ length: nSpikes }, () => rng.next()), [nSpikes]));
    }
    add(`raw_ephys_data/${probe}/_spikeglx_sync.times.${probe}.npy`, encodeNpy(Float64Array.from({ length: 50 }, (_, i) => i), [50]));
  });
  const stimOn = Float64Array.from({ length: nTrials }, (_, i) => 2 + 3 * i);
  add('alf/_ibl_trials.stimOn_times.npy', encodeNpy(stimOn, [nTrials]));
  add('alf/_ibl_trials.firstMovement_times.npy', encodeNpy(stimOn.map((x) => x + 0.3), [nTrials]));
  add('alf/_ibl_trials.feedback_times.npy', encodeNpy(stimOn.map((x) => x + 0.6), [nTrials]));
  add('alf/_ibl_trials.choice.npy', encodeNpy(Float64Array.from({ length: nTrials }, (_, i) => (i % 2 ? 1 : -1)), [nTrials]));
  add('alf/_ibl_trials.probabilityLeft.npy', encodeNpy(new Float64Array(nTrials).fill(0.5), [nTrials]));
  const wt = Float64Array.from({ length: 200 }, (_, i) => i * 0.2);
  add('alf/_ibl_wheel.timestamps.npy', encodeNpy(wt, [200]));
  add('alf/_ibl_wheel.position.npy', encodeNpy(wt.map((x) => Math.sin(x)), [200]));
  add('alf/_ibl_wheelMoves.intervals.npy', encodeNpy(new Float64Array(4), [2, 2]));
  return files;
}

/** Writes files into a session folder. */
export async function writeSessionFiles(sessionDir: string, files: GeneratedFile[]): Promise<void> {
  for (const f of files) {
    const p = join(sessionDir, ...f.relativePath.split('/'));
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.bytes);
  }
}
