// Training checkpoints and trained-model folders (docs/method.md §4.7, §6.3): a model folder in the tfjs
// layout (model.json + weights.bin, loadable by any model stage), and a training checkpoint that
// adds the optimiser moments and the loop state. A folder is replaced as a whole: written beside
// the old one, then swapped in by renames, so a process killed at any instant leaves either the
// old folder or the new one, never a mix (e.g. new weights under an old step count).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchitectureContribution, ArchitectureModel } from '../architecture.ts';
import { listOf } from '../graph/diagnostics.ts';
import { loadModel, saveModel, type SavedModel } from '../io/model-files.ts';
import * as tf from '../tensor/tf.ts';
import type { AdamW, AdamWState } from './adamw.ts';

export const TRAINING_JSON = 'training.json';
export const OPTIMIZER_BIN = 'optimizer.bin';
const PARTIAL = '.partial';
const OLD = '.old';

/**
 * Puts a crash-interrupted swap right: when `dir` is missing but its previous version survives
 * as `<dir>.old`, that version comes back; a half-written `<dir>.partial` is deleted.
 */
export async function recoverDir(dir: string): Promise<void> {
  if (!existsSync(dir) && existsSync(dir + OLD)) await rename(dir + OLD, dir);
  await rm(dir + PARTIAL, { recursive: true, force: true });
  await rm(dir + OLD, { recursive: true, force: true });
}

/** Writes a whole folder through `write(tmp)`, then swaps it in for `dir` (see the file comment). */
export async function replaceDirAtomic(dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = dir + PARTIAL;
  await recoverDir(dir);
  await mkdir(tmp, { recursive: true });
  await write(tmp);
  if (existsSync(dir)) await rename(dir, dir + OLD);
  await rename(tmp, dir);
  await rm(dir + OLD, { recursive: true, force: true });
}

/** What model.json's modelTopology holds: enough to rebuild the model before loading weights. */
export interface ModelTopology {
  format: 'mtm-flow-model';
  architecture: string;
  config: Record<string, unknown>;
}

function topologyOf(model: ArchitectureModel): ModelTopology {
  return { format: 'mtm-flow-model', architecture: model.architecture, config: model.config };
}

/** Saves a model folder (model.json + weights.bin); `metadata` must hold `sessions`. */
export async function writeModelFolder(dir: string, model: ArchitectureModel, metadata: Record<string, unknown>): Promise<void> {
  await saveModel(dir, { topology: topologyOf(model) as unknown as Record<string, unknown>, metadata, weights: model.weights() });
}

/** A model folder, replaced atomically. */
export async function saveModelFolder(dir: string, model: ArchitectureModel, metadata: Record<string, unknown>): Promise<void> {
  await replaceDirAtomic(dir, (tmp) => writeModelFolder(tmp, model, metadata));
}

/** A training checkpoint: the model folder plus optimizer.bin and training.json (loop state). */
export async function saveTrainingCheckpoint(
  dir: string,
  c: { model: ArchitectureModel; metadata: Record<string, unknown>; optimizer: AdamW; state: Record<string, unknown> },
): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await writeModelFolder(tmp, c.model, c.metadata);
    const { step, moments } = c.optimizer.state();
    const { data, specs } = await tf.io.encodeWeights(moments);
    await writeFile(join(tmp, OPTIMIZER_BIN), new Uint8Array(data));
    const o = c.optimizer;
    const json = { state: c.state, optimizer: { kind: 'adamw', step, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay, weightSpecs: specs } };
    await writeFile(join(tmp, TRAINING_JSON), JSON.stringify(json) + '\n');
  });
}

export interface LoadedCheckpoint<S> {
  saved: SavedModel;
  optimizer: AdamWState;
  state: S;
  /** Disposes the tensors read from disk (after they were copied into a model and optimiser). */
  dispose(): void;
}

/** Reads a training checkpoint, or undefined when `dir` holds none. Bad files are errors naming them. */
export async function loadTrainingCheckpoint<S = Record<string, unknown>>(dir: string): Promise<LoadedCheckpoint<S> | undefined> {
  await recoverDir(dir);
  const jsonPath = join(dir, TRAINING_JSON);
  if (!existsSync(jsonPath)) return undefined;
  let json: { state: S; optimizer: { step: number; weightSpecs: tf.io.WeightsManifestEntry[] } };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read checkpoint ${jsonPath}: ${(e as Error).message}`);
  }
  if (!json?.state || !json.optimizer || !Array.isArray(json.optimizer.weightSpecs)) throw new Error(`${jsonPath}: not a training checkpoint (no state or optimizer)`);
  const saved = await loadModel(dir);
  const binPath = join(dir, OPTIMIZER_BIN);
  let moments: tf.NamedTensorMap;
  try {
    const buf = await readFile(binPath);
    moments = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, json.optimizer.weightSpecs);
  } catch (e) {
    tf.dispose(Object.values(saved.weights));
    throw new Error(`cannot read optimizer state ${binPath}: ${(e as Error).message}`);
  }
  return {
    saved,
    optimizer: { step: json.optimizer.step, moments },
    state: json.state,
    dispose() {
      tf.dispose([...Object.values(saved.weights), ...Object.values(moments)]);
    },
  };
}

/** Rebuilds a model from a saved topology and sessions, and loads its weights. */
export function modelFromSaved(saved: SavedModel, architectures: ReadonlyMap<string, ArchitectureContribution>, source: string, seed = 0): ArchitectureModel {
  return buildSaved(saved, architectures, source, { seed });
}

export interface PretrainedOptions {
  /** The architecture the caller expects; a folder holding another is refused. */
  architecture?: string;
  /**
   * Config fields to change from the saved ones (e.g. dropout for fine-tuning). A field that
   * changes a weight's shape or adds or removes weights makes loading fail, naming the file.
   */
  config?: Record<string, unknown>;
  /** Seeds dropout and the initial weights of sessions added later. */
  seed?: number;
}

function buildSaved(saved: SavedModel, architectures: ReadonlyMap<string, ArchitectureContribution>, source: string, o: PretrainedOptions): ArchitectureModel {
  const topo = saved.topology as Partial<ModelTopology>;
  const name = topo.architecture;
  if (typeof name !== 'string') throw new Error(`${source}: model.json names no architecture (not an mtm-flow model)`);
  const arch = architectures.get(name);
  if (!arch) throw new Error(`${source}: the model's architecture '${name}' is not registered (known: ${listOf(architectures.keys())}); load its plugin`);
  if (o.architecture !== undefined && o.architecture !== name) {
    throw new Error(`${source}: holds a ${name} model, not ${o.architecture}: set architecture to ${name} to start from it`);
  }
  const sessions = saved.metadata.sessions;
  if (!Array.isArray(sessions)) throw new Error(`${source}: model.json metadata lists no sessions`);
  let model: ArchitectureModel;
  try {
    model = arch.build({ ...(topo.config ?? {}), ...(o.config ?? {}) }, { sessions: sessions as never, seed: o.seed ?? 0 });
  } catch (e) {
    throw new Error(`${source}: cannot rebuild its ${name} model: ${(e as Error).message}`);
  }
  try {
    model.loadWeights(saved.weights, { source });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Loads a trained model folder (e.g. a ModelRef's path) into a ready model. */
export async function loadTrainedModel(
  dir: string,
  architectures: ReadonlyMap<string, ArchitectureContribution>,
  opts: PretrainedOptions = {},
): Promise<{ model: ArchitectureModel; metadata: Record<string, unknown>; topology: ModelTopology }> {
  const saved = await loadModel(dir);
  try {
    const model = buildSaved(saved, architectures, join(dir, 'model.json'), opts);
    return { model, metadata: saved.metadata, topology: saved.topology as unknown as ModelTopology };
  } finally {
    tf.dispose(Object.values(saved.weights));
  }
}
