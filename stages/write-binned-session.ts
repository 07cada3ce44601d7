// Writes each binned session as a folder of .npy, Parquet and JSON files that numpy/pandas read (docs/method.md §6.4).
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import type { BinnedSession } from '../core/payloads.ts';
import { writeNpy } from '../core/io/npy.ts';
import { writeParquet } from '../core/io/parquet.ts';
import { writeFileAtomic } from '../core/io/atomic.ts';

/** Folder name for a session id: ids that are paths (no eid) become one safe component. */
export function sessionFolderName(sessionId: string): string {
  const name = sessionId.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
  return name || '_';
}

export async function writeBinnedSessionFolder(s: BinnedSession, dir: string): Promise<string[]> {
  const total = s.nTrials * s.nBins * s.nNeurons;
  if (s.counts.length !== total) {
    throw new Error(`session ${s.sessionId}: counts hold ${s.counts.length} entries, ${s.nTrials}x${s.nBins}x${s.nNeurons} expected`);
  }
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const shapes: Record<string, number[]> = {};
  const npy = async (name: string, data: Int32Array | Float32Array, shape: number[]) => {
    await writeNpy(join(dir, name), data, shape);
    files.push(name);
    shapes[name] = shape;
  };
  await npy('counts.npy', s.counts, [s.nTrials, s.nBins, s.nNeurons]);
  for (const [name, values] of Object.entries(s.perBin)) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) throw new Error(`session ${s.sessionId}: per-bin series name '${name}' cannot be a file name`);
    if (values.length !== s.nTrials * s.nBins) throw new Error(`session ${s.sessionId}: per-bin '${name}' holds ${values.length} values, ${s.nTrials}x${s.nBins} expected`);
    await npy(`${name}.npy`, values, [s.nTrials, s.nBins]);
  }
  if (s.trueRates) await npy('trueRates.npy', s.trueRates, [s.nTrials, s.nBins, s.nNeurons]);

  const trialCols: Parameters<typeof writeParquet>[1] = {
    trialIndex: { type: 'INT32', data: s.trials.trialIndex },
    split: { type: 'STRING', data: s.trials.split },
  };
  for (const [name, values] of Object.entries(s.trials.columns)) {
    if (name in trialCols) throw new Error(`session ${s.sessionId}: trial column '${name}' clashes with a reserved column`);
    trialCols[name] = { type: 'DOUBLE', data: values };
  }
  await writeParquet(join(dir, 'trials.parquet'), trialCols);
  files.push('trials.parquet');

  const n = s.neurons;
  await writeParquet(join(dir, 'neurons.parquet'), {
    probe: { type: 'STRING', data: n.map((x) => x.probe) },
    clusterId: { type: 'INT32', data: n.map((x) => x.clusterId) },
    acronym: { type: 'STRING', data: n.map((x) => x.acronym) },
    beryl: { type: 'STRING', data: n.map((x) => x.beryl) },
    cosmos: { type: 'STRING', data: n.map((x) => x.cosmos) },
    depthUm: { type: 'DOUBLE', data: n.map((x) => x.depthUm) },
    good: { type: 'BOOLEAN', data: n.map((x) => x.good) },
    atlasId: { type: 'INT64', data: n.map((x) => x.atlasId) },
  });
  files.push('neurons.parquet');

  const splitCounts: Record<string, number> = { train: 0, val: 0, test: 0 };
  for (const sp of s.trials.split) splitCounts[sp]++;
  const meta = {
    sessionId: s.sessionId,
    ...(s.eid ? { eid: s.eid } : {}),
    binSizeMs: s.binSizeMs,
    windowS: s.windowS,
    nTrials: s.nTrials,
    nBins: s.nBins,
    nNeurons: s.nNeurons,
    splits: splitCounts,
    shapes,
    files: [...files, 'meta.json'],
    layout: 'counts.npy and trueRates.npy are [trial, bin, neuron] in C order; per-bin series are [trial, bin]; rows of trials.parquet and neurons.parquet follow those axes',
  };
  await writeFileAtomic(join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  files.push('meta.json');
  return files;
}

export const writeBinnedSession = defineStage({
  id: 'write-binned-session',
  version: 1,
  summary: 'Writes each binned session to <out>/<sessionId>/: counts.npy, trials.parquet, neurons.parquet, per-bin .npy, meta.json',
  spec: 'docs/method.md §6.4',
  inputs: { sessions: { type: 'binned-session', description: 'binned sessions to save' } },
  outputs: { files: { type: 'artifact', description: 'one folder per session' } },
  params: z.object({
    out: z.string().default('').describe("folder that receives one sub-folder per session; empty uses this node's folder in the run directory"),
  }),
  create(p, ctx) {
    return {
      async map(s) {
        const root = p.out || ctx.run.artifactDir(ctx.nodeId);
        const dir = join(root, sessionFolderName(s.sessionId));
        const files = await writeBinnedSessionFolder(s, dir);
        ctx.logger.info({ session: s.sessionId, dir, files: files.length }, 'wrote binned session');
        return {
          kind: 'artifact',
          path: dir,
          description: `binned session ${s.sessionId}: ${s.nTrials} trials x ${s.nBins} bins x ${s.nNeurons} neurons (${files.join(', ')})`,
          sessionId: s.sessionId,
        };
      },
    };
  },
});
