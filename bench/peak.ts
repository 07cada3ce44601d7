// The machine's limits, measured: peak fp32 FMA throughput (the widest vector ISA the CPU has:
// AVX-512 where present, AVX2 otherwise; one thread and every core) from the native addon's FMA
// loop, and a large GEMM (the addon's built-in one, and PyTorch's torch.matmul) on the same
// machine in the same run. bench/training.ts reports each step's achieved FLOP/s against it.
// Usage: node --import tsx bench/peak.ts [--n 2048] [--no-torch]   (writes bench/results/peak.json)
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../core/io/atomic.ts';
import { loadNative, type NativeKernels } from '../core/tensor/kernels/native.ts';
import { machineInfo, runTorchGemm, type PeerGemm } from './torch-peer.ts';

export interface PeakResult {
  /** The ISA the peak is for ('avx512f' or 'avx2+fma'), the widest this CPU has. */
  isa: string;
  /** FMA-loop GFLOP/s: one thread, and all threads at once (best short burst each). */
  fmaGflops1: number;
  fmaGflopsAll: number;
  /** max(all threads at once, one thread x cores): the peak the training fractions divide by. */
  peakGflops: number;
  threads: number;
  /** The same loop at 256 bits (AVX2), for machines without AVX-512. */
  avx2Gflops1: number;
  avx2GflopsAll: number;
  gemm: { n: number; ours: Record<string, number>; oursAvx2?: Record<string, number>; torch?: Record<string, number>; torchVersion?: string; torchError?: string };
  loadAverage: { start: number[]; end: number[] };
}

/** Best-of-reps GFLOP/s of the addon's C = A B for n x n float32 on `threads` threads. */
export function nativeGemmGflops(native: NativeKernels, n: number, threads: number, reps = 6): number {
  const before = native.info().threads;
  native.configure({ threads });
  const a = new Float32Array(n * n).map(() => Math.random() - 0.5);
  const b = new Float32Array(n * n).map(() => Math.random() - 0.5);
  const c = new Float32Array(n * n);
  native.gemm(a, 0, 0, b, 0, 0, c, 0, 1, n, n, n, false, false);
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    native.gemm(a, 0, 0, b, 0, 0, c, 0, 1, n, n, n, false, false);
    best = Math.min(best, performance.now() - t0);
  }
  native.configure({ threads: before });
  return Math.round((2 * n ** 3) / (best / 1000) / 1e8) / 10;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export async function measurePeak(opts: { n?: number; torch?: boolean; log?: (m: string) => void } = {}): Promise<PeakResult> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const { native, reason } = loadNative();
  if (!native) throw new Error(`peak: ${reason}`);
  const load0 = loadavg();
  const info = native.info();
  const cores = cpus().length;
  const widest = info.cpuIsa === 'avx512f' ? 512 : 256;
  const best = (bits: 512 | 256, threads: number) => Math.max(...[0, 1, 2].map(() => native.peak(bits, 300, threads).gflops));
  const fma1 = best(widest, 1);
  const fmaAll = best(widest, 0);
  const avx1 = best(256, 1);
  const avxAll = best(256, 0);
  const n = opts.n ?? 2048;
  const ours: Record<string, number> = {};
  for (const t of [1, cores]) ours[`threads${t}`] = nativeGemmGflops(native, n, t);
  let oursAvx2: Record<string, number> | undefined;
  if (info.cpuIsa === 'avx512f') {
    native.configure({ isa: 'avx2' });
    oursAvx2 = {};
    for (const t of [1, cores]) oursAvx2[`threads${t}`] = nativeGemmGflops(native, n, t);
    native.configure({ isa: 'avx512' });
  }
  const gemm: PeakResult['gemm'] = { n, ours, oursAvx2 };
  if (opts.torch !== false) {
    try {
      const torch: Record<string, number> = {};
      let g: PeerGemm | undefined;
      for (const t of [1, cores]) {
        g = await runTorchGemm(n, t, { log });
        torch[`threads${t}`] = g.gemmGflops;
      }
      gemm.torch = torch;
      gemm.torchVersion = `${g?.torchVersion} (${g?.pythonSource})`;
    } catch (e) {
      gemm.torchError = (e as Error).message.split('\n')[0];
    }
  }
  const res: PeakResult = {
    isa: widest === 512 ? 'avx512f' : 'avx2+fma',
    fmaGflops1: r1(fma1),
    fmaGflopsAll: r1(fmaAll),
    peakGflops: r1(Math.max(fmaAll, fma1 * cores)),
    threads: cores,
    avx2Gflops1: r1(avx1),
    avx2GflopsAll: r1(avxAll),
    gemm,
    loadAverage: { start: load0.map((x) => r1(x * 10) / 10), end: loadavg().map((x) => r1(x * 10) / 10) },
  };
  log(`peak: ${res.isa} FMA ${res.fmaGflops1} GFLOP/s on 1 thread, ${res.fmaGflopsAll} on ${cores} (peak ${res.peakGflops}); GEMM ${n}: ours ${JSON.stringify(ours)}, torch ${JSON.stringify(gemm.torch ?? gemm.torchError)}`);
  return res;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: a } = parseArgs({ options: { n: { type: 'string', default: '2048' }, 'no-torch': { type: 'boolean', default: false } } });
  const res = await measurePeak({ n: Number(a.n), torch: !a['no-torch'] });
  const out = join(import.meta.dirname, 'results', 'peak.json');
  await writeFileAtomic(out, JSON.stringify({ benchmark: 'peak', date: new Date().toISOString(), machine: machineInfo(), ...res }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
