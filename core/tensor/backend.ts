// Picks the fastest TensorFlow.js backend that actually starts here, and says why (docs/architecture.md §8.1;
// docs/performance.md §2.4: setBackend can fail silently, so every choice is verified).
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import * as tf from './tf.ts';
import { registerFastKernels } from './kernels/index.ts';

export type BackendChoice = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** What tf.getBackend() reports once verified ('tensorflow', 'wasm', 'cpu'). */
  name: string;
  /** npm package that provides it ('@tensorflow/tfjs-backend-wasm', ...). */
  package: string;
  /** Why this one runs and why each better one did not. */
  reason: string;
}

export interface InitBackendOptions {
  /** Use exactly this backend, or throw saying why it cannot load. Default: env MTM_TF_BACKEND, else the best available. */
  force?: BackendChoice;
  log?: (msg: string) => void;
}

interface Candidate {
  choice: BackendChoice;
  /** Backend name the engine registers. */
  name: string;
  package: string;
  /** Imports/configures the package; throws when it cannot be loaded. */
  load(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** Folder holding the wasm backend's .wasm files, as a file path ending in a separator. */
export function wasmDistDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + sep;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}

const CANDIDATES: Candidate[] = [
  {
    choice: 'tensorflow-gpu',
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node-gpu',
    async load() {
      await import('@tensorflow/tfjs-node-gpu' as string);
    },
  },
  {
    choice: 'tensorflow',
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node',
    async load() {
      await import('@tensorflow/tfjs-node' as string);
    },
  },
  {
    choice: 'wasm',
    name: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    async load() {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Under Node the emscripten loader reads the .wasm with fs, so a plain folder path works;
      // naming it explicitly keeps it working when this module is bundled or moved.
      wasm.setWasmPaths(wasmDistDir());
    },
  },
  {
    choice: 'cpu',
    name: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    async load() {
      /* bundled with @tensorflow/tfjs */
    },
  },
];

/** Runs a tiny op and checks its value: a backend that "started" but cannot compute is not running. */
function smokeTest(): void {
  const out = tf.tidy(() => tf.tensor1d([1, 2, 3]).square().sum());
  const v = out.dataSync()[0];
  out.dispose();
  if (v !== 14) throw new Error(`smoke test computed ${v}, expected 14`);
}

async function trySetBackend(c: Candidate): Promise<void> {
  try {
    await c.load();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new Error(`${c.package} is not installed`);
    throw new Error(`${c.package} failed to load: ${firstLine(e)}`);
  }
  if (!tf.findBackendFactory(c.name)) throw new Error(`${c.package} loaded but registered no '${c.name}' backend`);
  let ok: boolean;
  try {
    ok = await tf.setBackend(c.name);
  } catch (e) {
    throw new Error(`${c.package} failed to start: ${firstLine(e)}`);
  }
  // tf.getBackend() can name a backend whose initialisation failed, so check all three.
  if (!ok || tf.getBackend() !== c.name || !tf.findBackend(c.name)) {
    throw new Error(`${c.package} failed to start (tf.setBackend('${c.name}') returned ${ok}; see the messages above)`);
  }
  // The cpu backend prints an advert for tfjs-node on first use; our own log says why it runs.
  if (c.name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  try {
    smokeTest();
  } catch (e) {
    throw new Error(`${c.package} started but failed a smoke test: ${firstLine(e)}`);
  }
}

let current: { key: string; info: Promise<BackendInfo> } | undefined;

/**
 * Selects and verifies the backend: tfjs-node-gpu, tfjs-node, wasm (SIMD when the CPU has it),
 * then pure-JS cpu. Calling it again with the same choice returns the first result.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const envForce = process.env.MTM_TF_BACKEND as BackendChoice | undefined;
  const force = opts.force ?? (envForce || undefined);
  if (force !== undefined && !BACKEND_CHOICES.includes(force)) {
    return Promise.reject(
      new Error(`unknown tensor backend '${force}'${opts.force ? '' : ' (from MTM_TF_BACKEND)'}: expected one of ${BACKEND_CHOICES.join(', ')}`),
    );
  }
  const key = force ?? 'auto';
  if (current && current.key === key) return current.info;
  const info = select(force, opts.log ?? (() => {}));
  current = { key, info };
  info.catch(() => {
    if (current?.info === info) current = undefined;
  });
  return info;
}

async function select(force: BackendChoice | undefined, log: (msg: string) => void): Promise<BackendInfo> {
  const skipped: string[] = [];
  const list = force ? CANDIDATES.filter((c) => c.choice === force) : CANDIDATES;
  for (const c of list) {
    try {
      await trySetBackend(c);
    } catch (e) {
      const why = (e as Error).message;
      if (force) throw new Error(`cannot use tensor backend '${force}': ${why}`);
      skipped.push(`${c.choice}: ${why}`);
      log(`tensor backend ${c.choice} unavailable: ${why}`);
      continue;
    }
    let detail = '';
    if (c.name === 'wasm') {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      detail = ` (SIMD ${simd ? 'on' : 'off'}, ${threads ? 'multi-threaded' : 'single-threaded'})`;
    }
    // Native kernels over the built-ins (core/tensor/kernels, docs/performance.md §3); adds ' + native kernels (...)' or nothing.
    detail += registerFastKernels(c.name, log);
    const reason = force
      ? `forced ${force}${detail}`
      : skipped.length
        ? `${c.choice}${detail} is the best that started; ${skipped.join('; ')}`
        : `${c.choice}${detail} is the first choice and started`;
    const info = { name: tf.getBackend(), package: c.package, reason };
    log(`tensor backend: ${info.name} from ${info.package}: ${reason}`);
    return info;
  }
  throw new Error(`no tensor backend could start: ${skipped.join('; ')}`);
}
