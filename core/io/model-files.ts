// Model files in the tfjs layout (model.json + weights.bin) through a file:// handler of our own,
// so saving and loading work without tfjs-node, and a browser can load the same folder with
// tf.io.http / fetch. Writes are atomic: weights first, model.json last, each via rename.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../tensor/tf.ts';
import { writeFileAtomic } from './atomic.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export interface SavedModel {
  /** Architecture name and config: enough to rebuild the model before loading weights. */
  topology: Record<string, unknown>;
  /** Masking config, session ids, neuron and region layout, training summary, ... */
  metadata: Record<string, unknown>;
  weights: tf.NamedTensorMap;
}

function dirOf(urlOrPath: string): string {
  return urlOrPath.startsWith('file://') ? fileURLToPath(urlOrPath) : urlOrPath;
}

function concat(data: ArrayBuffer | ArrayBuffer[]): ArrayBuffer {
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
}

/** A tf.io handler reading and writing <dir>/model.json and <dir>/weights.bin. */
export class FileModelHandler implements tf.io.IOHandler {
  readonly dir: string;
  constructor(urlOrPath: string) {
    this.dir = dirOf(urlOrPath);
  }

  async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    const weightData = concat((artifacts.weightData ?? new ArrayBuffer(0)) as ArrayBuffer | ArrayBuffer[]);
    await writeFileAtomic(join(this.dir, WEIGHTS_BIN), new Uint8Array(weightData));
    const json = {
      format: artifacts.format ?? 'mtm-flow',
      generatedBy: artifacts.generatedBy ?? 'mtm-flow',
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      userDefinedMetadata: artifacts.userDefinedMetadata,
    };
    const text = JSON.stringify(json);
    await writeFileAtomic(join(this.dir, MODEL_JSON), text);
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: 'JSON',
        modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
        weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
        weightDataBytes: weightData.byteLength,
      },
    };
  }

  async load(): Promise<tf.io.ModelArtifacts> {
    const jsonPath = join(this.dir, MODEL_JSON);
    let json: any;
    try {
      json = JSON.parse(await readFile(jsonPath, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read model file ${jsonPath}: ${(e as Error).message}`);
    }
    if (!Array.isArray(json.weightsManifest)) throw new Error(`${jsonPath}: no weightsManifest (not a tfjs model file)`);
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of json.weightsManifest) {
      specs.push(...group.weights);
      for (const p of group.paths) {
        const file = join(this.dir, p);
        const buf = await readFile(file).catch((e) => {
          throw new Error(`cannot read weights ${file} named in ${jsonPath}: ${e.message}`);
        });
        buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
      }
    }
    const weightData = tf.io.concatenateArrayBuffers(buffers);
    const expected = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * bytesPer(w.dtype), 0);
    if (weightData.byteLength !== expected) {
      throw new Error(`${join(this.dir, WEIGHTS_BIN)} holds ${weightData.byteLength} bytes but ${jsonPath} describes ${expected}: truncated or mismatched`);
    }
    return {
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData,
      userDefinedMetadata: json.userDefinedMetadata,
    };
  }
}

function bytesPer(dtype: string): number {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  if (dtype === 'bool') return 1;
  throw new Error(`unsupported weight dtype '${dtype}'`);
}

// Route file:// URLs to our handler, so tf.io.getSaveHandlers('file://...') works without tfjs-node.
let routed = false;
export function registerFileRouter(): void {
  if (routed) return;
  routed = true;
  const router = (url: string | string[]) => {
    const u = Array.isArray(url) ? url[0] : url;
    return typeof u === 'string' && u.startsWith('file://') ? new FileModelHandler(u) : null;
  };
  tf.io.registerSaveRouter(router as any);
  tf.io.registerLoadRouter(router as any);
}

export async function saveModel(dir: string, model: SavedModel): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(model.weights);
  await new FileModelHandler(dir).save({
    modelTopology: model.topology,
    weightSpecs: specs,
    weightData: data,
    userDefinedMetadata: model.metadata as any,
  });
}

export async function loadModel(dir: string): Promise<SavedModel> {
  const a = await new FileModelHandler(dir).load();
  const weights = tf.io.decodeWeights(a.weightData as ArrayBuffer, a.weightSpecs ?? []);
  return { topology: (a.modelTopology ?? {}) as Record<string, unknown>, metadata: (a.userDefinedMetadata ?? {}) as Record<string, unknown>, weights };
}

/** True when `dir` holds a model.json (e.g. to decide between resume and a fresh start). */
export async function hasModel(dir: string): Promise<boolean> {
  return stat(join(dir, MODEL_JSON)).then(
    () => true,
    () => false,
  );
}
