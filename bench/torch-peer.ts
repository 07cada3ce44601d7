// Runs the PyTorch NDT1 peer (bench/torch_ndt1.py) for the training benchmark: picks the
// interpreter (bench/.venv's python, made by bench/setup-peer.sh with pip's torch, else Debian's
// /usr/bin/python3 with python3-torch and OpenBLAS, installed with apt-get when missing), spawns
// the script with its thread settings, and returns its JSON result. Run directly, it measures the
// benchmark sizes and prints them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Debian's interpreter: the python3 on PATH may be another one, without torch. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** The benchmarks' own virtual environment (bench/setup-peer.sh), preferred when it has torch. */
export const VENV_PYTHON = join(import.meta.dirname, '.venv', 'bin', 'python');
export const PEER_SCRIPT = join(import.meta.dirname, 'torch_ndt1.py');
/** python3-torch alone links Debian's reference BLAS, ~15x slower: OpenBLAS must come with it. */
export const PEER_PACKAGES = ['python3-torch', 'libopenblas0-pthread'];

export interface TorchConfig {
  d: number;
  layers: number;
  heads: number;
  mlp: number;
  neurons: number;
  bins: number;
  batch: number;
  steps: number;
  warmup: number;
  /** torch.set_num_threads; with Debian's torch keep 1 when OpenBLAS gets the cores (2 + 2 is 2-3x slower). */
  threads: number;
  /** OPENBLAS_NUM_THREADS for the child. */
  blasThreads: number;
  seed: number;
  dropout: number;
  /** 'manual' (the same op sequence as mtm-flow's plain path) or 'sdpa' (F.scaled_dot_product_attention, torch >= 2). */
  attention?: 'manual' | 'sdpa';
}

export interface PeerOptions {
  python?: string;
  script?: string;
  /** Install the Debian packages when missing (default true); false: throw instead. */
  install?: boolean;
  /** Kill the peer after this long (default 15 min). */
  timeoutMs?: number;
  /** Where progress and install steps are told (default stderr). */
  log?: (msg: string) => void;
}

export interface TorchResult {
  trialsPerS: number;
  msPerStep: number;
  /** Process CPU time per step (the work itself when the peer runs one thread). */
  cpuMsPerStep?: number;
  params: number;
  torchVersion: string;
  /** Interpreter that ran (sys.executable) and where it came from. */
  python?: string;
  pythonSource?: PythonSource;
  parallel?: { cpuCapability: string | null; mkldnn: boolean; info: string[] };
  blas: { buildBlas: string | null; configLine: string; loadedLibraries: string[]; openblas: boolean };
  threads: { torch: number; interop: number; openblasEnv: string | null; ompEnv: string | null };
  config: Record<string, unknown>;
  wallS: number;
  lossFirst: number | null;
  lossLast: number | null;
}

const SHARED = { neurons: 300, bins: 100, batch: 16, dropout: 0.1 };
/** The sizes of the model-path benchmark; the tfjs side uses the same. */
export const BENCH_SIZES = {
  /** graphs/quickstart.yaml's model and batch (NDT1 defaults: D 64, 2 layers, MLP 128, dropout 0.2), 100 neurons. */
  quickstart: { d: 64, layers: 2, heads: 4, mlp: 128, neurons: 100, bins: 100, batch: 8, dropout: 0.2 },
  small: { d: 128, layers: 4, heads: 4, mlp: 512, ...SHARED },
  reference: { d: 512, layers: 5, heads: 8, mlp: 1024, ...SHARED },
} as const;

export const DEFAULT_TORCH_CONFIG: TorchConfig = {
  ...BENCH_SIZES.small,
  steps: 10,
  warmup: 2,
  threads: 1,
  blasThreads: 2,
  seed: 0,
};

/** Command-line arguments of torch_ndt1.py for a config. */
export function peerArgs(cfg: TorchConfig): string[] {
  const flags: Array<[string, number]> = [
    ['--d', cfg.d], ['--layers', cfg.layers], ['--heads', cfg.heads], ['--mlp', cfg.mlp],
    ['--neurons', cfg.neurons], ['--bins', cfg.bins], ['--batch', cfg.batch], ['--steps', cfg.steps],
    ['--warmup', cfg.warmup], ['--threads', cfg.threads], ['--seed', cfg.seed], ['--dropout', cfg.dropout],
  ];
  for (const [flag, v] of flags) {
    if (!Number.isFinite(v)) throw new Error(`torch peer: ${flag.slice(2)} must be a number, got ${v}`);
  }
  const out = flags.flatMap(([flag, v]) => [flag, String(v)]);
  if (cfg.attention && cfg.attention !== 'manual') out.push('--attention', cfg.attention);
  return out;
}

export type PythonSource = 'bench/.venv' | 'debian' | 'given';

/**
 * The interpreter to run the peer with: `given` when set, else bench/.venv's python when it
 * imports torch (bench/setup-peer.sh), else Debian's /usr/bin/python3 (python3-torch).
 */
export function choosePython(given?: string, venvPython = VENV_PYTHON): { python: string; source: PythonSource } {
  if (given) return { python: given, source: 'given' };
  if (existsSync(venvPython) && torchImports(venvPython)) return { python: venvPython, source: 'bench/.venv' };
  return { python: SYSTEM_PYTHON, source: 'debian' };
}

/**
 * The child's environment: BLAS and OpenMP thread counts pinned, and Python variables of other
 * interpreters (pyenv, virtualenvs) removed so Debian's python3 finds its own modules.
 */
export function peerEnv(cfg: Pick<TorchConfig, 'threads' | 'blasThreads'>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'VIRTUAL_ENV', 'PYTHONUSERBASE']) delete env[k];
  env.PYTHONNOUSERSITE = '1';
  env.OPENBLAS_NUM_THREADS = String(cfg.blasThreads);
  env.OMP_NUM_THREADS = String(cfg.threads);
  env.MKL_NUM_THREADS = String(cfg.threads);
  return env;
}

/** The result line among the script's output: the last line that parses as a JSON object with trialsPerS. */
export function parsePeerOutput(stdout: string): TorchResult {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    let v: unknown;
    try {
      v = JSON.parse(lines[i]);
    } catch {
      continue;
    }
    const r = v as Partial<TorchResult>;
    if (r && typeof r.trialsPerS === 'number' && typeof r.msPerStep === 'number' && typeof r.params === 'number') return r as TorchResult;
  }
  throw new Error(`torch peer: no result line in its output (expected one JSON object with trialsPerS); output was:\n${stdout.slice(-2000)}`);
}

function torchImports(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import torch'], { env: peerEnv({ threads: 1, blasThreads: 1 }), stdio: 'ignore' });
  return r.status === 0;
}

function debInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function aptAvailable(): boolean {
  return spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
}

function runLogged(cmd: string[], log: (msg: string) => void): void {
  log(`torch peer: running ${cmd.join(' ')}`);
  const r = spawnSync(cmd[0], cmd.slice(1), {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error) throw new Error(`torch peer: cannot run ${cmd[0]} (${r.error.message})`);
  if (r.status !== 0) throw new Error(`torch peer: \`${cmd.join(' ')}\` failed with exit code ${r.status}`);
}

/**
 * Makes sure `python` imports torch and OpenBLAS is installed; installs Debian's packages with
 * apt-get when not (as root, or through passwordless sudo). Throws a sentence saying why when it
 * cannot.
 */
export function ensureTorch(opts: Pick<PeerOptions, 'python' | 'install' | 'log'> = {}): void {
  const python = opts.python ?? SYSTEM_PYTHON;
  const log = opts.log ?? ((m: string) => console.error(m));
  const hasTorch = torchImports(python);
  const missing = PEER_PACKAGES.filter((p) => !debInstalled(p));
  // A non-Debian python with torch is fine on its own; OpenBLAS only matters for Debian's torch.
  if (hasTorch && (python !== SYSTEM_PYTHON || !missing.length)) return;
  const why = hasTorch ? `${missing.join(', ')} not installed` : `${python} cannot import torch`;
  if (opts.install === false) throw new Error(`torch peer: ${why}; install ${PEER_PACKAGES.join(' and ')} (apt-get install ${PEER_PACKAGES.join(' ')})`);
  if (!aptAvailable()) throw new Error(`torch peer: ${why}, and this machine has no apt-get to install ${PEER_PACKAGES.join(' and ')}; install PyTorch for ${python} by hand`);
  const root = process.getuid?.() === 0;
  const sudoOk = !root && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!root && !sudoOk) throw new Error(`torch peer: ${why}, and installing ${PEER_PACKAGES.join(' and ')} needs root (not root, and sudo asks for a password); run: sudo apt-get install ${PEER_PACKAGES.join(' ')}`);
  const pre = root ? [] : ['sudo', '-n'];
  log(`torch peer: ${why}; installing ${PEER_PACKAGES.join(', ')} with apt-get`);
  runLogged([...pre, 'apt-get', 'update'], log);
  runLogged([...pre, 'apt-get', 'install', '-y', '--no-install-recommends', ...PEER_PACKAGES], log);
  if (!torchImports(python)) throw new Error(`torch peer: installed ${PEER_PACKAGES.join(', ')} but ${python} still cannot import torch`);
}

/** Runs one peer measurement and returns its result. */
export async function runTorchPeer(cfg: Partial<TorchConfig> = {}, opts: PeerOptions = {}): Promise<TorchResult> {
  const full: TorchConfig = { ...DEFAULT_TORCH_CONFIG, ...cfg };
  const { python, source } = choosePython(opts.python);
  const log = opts.log ?? ((m: string) => console.error(m));
  if (source !== 'bench/.venv') ensureTorch({ python, install: opts.install, log });
  const args = [opts.script ?? PEER_SCRIPT, ...peerArgs(full)];
  const result = await spawnPeer(python, args, full, opts, log);
  result.pythonSource = source;
  result.python ??= python;
  const debianTorch = source === 'debian' || (source === 'given' && python === SYSTEM_PYTHON);
  if (debianTorch && !result.blas?.openblas) log(`torch peer: warning: OpenBLAS is not loaded (${result.blas?.loadedLibraries?.join(', ') || 'no BLAS library seen'}); numbers will be far slower than a tuned PyTorch`);
  return result;
}

/** One peer setting tried by bestTorchPeer. */
export interface PeerVariant {
  threads: number;
  blasThreads: number;
  attention: 'manual' | 'sdpa';
}

/**
 * The settings worth trying on a machine of `cores` cores: torch threads 1 and all cores; with
 * Debian's torch (OpenBLAS) the BLAS gets the cores the torch threads leave (never both: 2 + 2
 * is 2-3x slower); with pip's torch (its own BLAS follows torch's thread count) also the fused
 * attention, F.scaled_dot_product_attention.
 */
export function peerVariants(source: PythonSource, torchMajor: number, cores = cpus().length): PeerVariant[] {
  const counts = [...new Set([1, Math.max(1, cores)])];
  const attentions: Array<'manual' | 'sdpa'> = torchMajor >= 2 ? ['manual', 'sdpa'] : ['manual'];
  const out: PeerVariant[] = [];
  for (const threads of counts) {
    const blasThreads = source === 'debian' ? Math.max(1, cores - threads + 1) : threads;
    for (const attention of attentions) out.push({ threads, blasThreads, attention });
  }
  return out;
}

/** The torch version `python` imports ('' when it cannot). */
export function torchVersionOf(python: string): string {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { env: peerEnv({ threads: 1, blasThreads: 1 }), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

export interface BestPeer {
  best: TorchResult;
  variant: PeerVariant;
  tried: Array<PeerVariant & { trialsPerS: number | null; cpuMsPerStep?: number; error?: string }>;
}

/** Runs every peerVariants setting for one size and keeps the fastest (the fair peer). */
export async function bestTorchPeer(cfg: Partial<TorchConfig>, opts: PeerOptions = {}): Promise<BestPeer> {
  const { python, source } = choosePython(opts.python);
  const log = opts.log ?? ((m: string) => console.error(m));
  if (source !== 'bench/.venv') ensureTorch({ python, install: opts.install, log });
  const major = Number(torchVersionOf(python).split('.')[0]) || 1;
  const tried: BestPeer['tried'] = [];
  let best: { r: TorchResult; v: PeerVariant } | undefined;
  for (const v of peerVariants(source, major)) {
    try {
      const r = await runTorchPeer({ ...cfg, ...v }, { ...opts, python, install: false, log });
      r.pythonSource = source;
      tried.push({ ...v, trialsPerS: r.trialsPerS, cpuMsPerStep: r.cpuMsPerStep });
      log(`torch peer: threads ${v.threads} (BLAS ${v.blasThreads}), attention ${v.attention}: ${r.trialsPerS} trials/s`);
      if (!best || r.trialsPerS > best.r.trialsPerS) best = { r, v };
    } catch (e) {
      tried.push({ ...v, trialsPerS: null, error: (e as Error).message.split('\n')[0] });
    }
  }
  if (!best) throw new Error(`torch peer: every setting failed: ${tried.map((t) => t.error).join('; ')}`);
  return { best: best.r, variant: best.v, tried };
}

export interface PeerGemm {
  gemmGflops: number;
  n: number;
  threads: number;
  torchVersion: string;
  python: string;
  pythonSource?: PythonSource;
}

/** torch.matmul of two n x n float32 matrices on `threads` threads: the peer's large-GEMM rate. */
export async function runTorchGemm(n: number, threads: number, opts: PeerOptions = {}): Promise<PeerGemm> {
  const { python, source } = choosePython(opts.python);
  const log = opts.log ?? ((m: string) => console.error(m));
  if (source !== 'bench/.venv') ensureTorch({ python, install: opts.install, log });
  const cfg = { threads, blasThreads: threads };
  const args = [opts.script ?? PEER_SCRIPT, '--gemm', String(n), '--threads', String(threads)];
  const out = await spawnRaw(python, args, cfg, opts);
  const line = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
  const r = line ? (JSON.parse(line) as PeerGemm) : undefined;
  if (!r || typeof r.gemmGflops !== 'number') throw new Error(`torch peer: no GEMM result in its output:\n${out.slice(-1000)}`);
  return { ...r, pythonSource: source };
}

function spawnRaw(python: string, args: string[], cfg: Pick<TorchConfig, 'threads' | 'blasThreads'>, opts: PeerOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(python, args, { env: peerEnv(cfg), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`torch peer: ${python} ${args.join(' ')} ran past ${Math.round(timeoutMs / 1000)} s and was stopped`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`torch peer: cannot start ${python} (${e.message})`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`torch peer: ${python} ${args.join(' ')} exited with ${code ?? signal}:\n${err.slice(-2000)}`));
      else resolve(out);
    });
  });
}

async function spawnPeer(python: string, args: string[], full: TorchConfig, opts: PeerOptions, log: (msg: string) => void): Promise<TorchResult> {
  log(`torch peer: OMP_NUM_THREADS=${full.threads} OPENBLAS_NUM_THREADS=${full.blasThreads} ${python} ${args.join(' ')}`);
  return parsePeerOutput(await spawnRaw(python, args, full, opts));
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  freeMemoryGiB: number;
  /** 1, 5 and 15 minute load averages at the time of the call: a shared machine's neighbours show here. */
  loadAverage: number[];
  node: string;
  platform: string;
  arch: string;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: round(totalmem() / 2 ** 30),
    freeMemoryGiB: round(freemem() / 2 ** 30),
    loadAverage: loadavg().map((x) => round(x, 2)),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
  };
}

// `node --import tsx bench/torch-peer.ts [steps]`: both benchmark sizes, printed, no result file
// (the combined training benchmark writes bench/results/).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const steps = Number(process.argv[2] ?? 10);
  const out: Record<string, unknown> = { machine: machineInfo() };
  for (const [name, size] of Object.entries(BENCH_SIZES)) {
    const r = await runTorchPeer({ ...size, steps, warmup: 2 });
    out[name] = r;
    console.error(`${name}: ${r.trialsPerS} trials/s, ${r.msPerStep} ms/step, ${r.params} params`);
  }
  console.log(JSON.stringify(out, null, 2));
}
