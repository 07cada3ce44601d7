// Checkpointing and resume for the training loop (docs/method.md §4.7): a node's artifact folder
// holds last/ (weights, AdamW moments, loop state: what a rerun resumes from) and best/ (the model
// of the best epoch). The file formats and atomic swaps are checkpoint.ts's; this part decides
// what is saved when, and which checkpoint a run may resume from.
//
// Decisions:
// - A fingerprint (everything that changes the numbers: params, seed, epochs, batches per epoch)
//   is saved with the state. A rerun whose fingerprint differs in any field is refused, naming
//   each field there and now, rather than mixing two trainings. Fields are compared as sorted-key
//   JSON, so key order and a spelled-out default (filled before fingerprinting) change nothing.
// - Fields the new fingerprint lacks are not compared: a field added only when it is not the
//   default keeps checkpoints written before it existed resumable.
import { join } from 'node:path';
import type { ArchitectureModel } from '../architecture.ts';
import type { AdamW } from './adamw.ts';
import { loadTrainingCheckpoint, saveModelFolder, saveTrainingCheckpoint, type LoadedCheckpoint } from './checkpoint.ts';

/** A stable JSON text for comparing fingerprints (keys sorted at every level). */
export function stableJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stableJson).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((x as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}

/** `field <there> there, <now> now` for each field of `now` whose value differs in `old`. */
export function fingerprintDiffs(old: Record<string, unknown>, now: Record<string, unknown>): string[] {
  return Object.keys(now)
    .filter((k) => stableJson(old[k]) !== stableJson(now[k]))
    .map((k) => `${k} ${stableJson(old[k])} there, ${stableJson(now[k])} now`);
}

export class Checkpointer {
  readonly lastDir: string;
  readonly bestDir: string;

  constructor(readonly dir: string) {
    this.lastDir = join(dir, 'last');
    this.bestDir = join(dir, 'best');
  }

  /** The checkpoint a rerun resumes from, or undefined on a fresh start. */
  load<S>(): Promise<LoadedCheckpoint<S> | undefined> {
    return loadTrainingCheckpoint<S>(this.lastDir);
  }

  /** Why a checkpoint of fingerprint `old` cannot resume a training of fingerprint `now`, or undefined when it can. */
  refusal(old: Record<string, unknown>, now: Record<string, unknown>): string | undefined {
    const diffs = fingerprintDiffs(old, now);
    if (!diffs.length) return undefined;
    return `${this.lastDir} holds a checkpoint of a different training (${diffs.join('; ')}): run into a new --out folder, or delete ${this.dir} to start over`;
  }

  /** Rewrites last/ (after every epoch, and at the batch reached when interrupted). */
  saveLast(model: ArchitectureModel, metadata: Record<string, unknown>, optimizer: AdamW, state: object): Promise<void> {
    return saveTrainingCheckpoint(this.lastDir, { model, metadata, optimizer, state: state as Record<string, unknown> });
  }

  /** Rewrites best/. Called before saveLast at an epoch end: a crash between the two redoes the epoch, which rewrites best/ alike. */
  saveBest(model: ArchitectureModel, metadata: Record<string, unknown>): Promise<void> {
    return saveModelFolder(this.bestDir, model, metadata);
  }
}
