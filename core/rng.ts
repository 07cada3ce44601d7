// Seeded random numbers: every stochastic step (splits, masking, simulation) draws from here
// so a run is reproducible from its seed.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Standard normal. */
  normal(): number;
  /** Poisson draw with mean `lambda` (>= 0). */
  poisson(lambda: number): number;
  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(a: T[]): T[];
  /** An independent generator derived from this one and a label. */
  fork(label: string): Rng;
  /** The 32-bit state, for checkpoints. */
  state(): number;
}

/** FNV-1a hash of a string, used to derive per-node and per-label seeds. */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: small, fast, good enough statistically for simulation and sampling. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  let spare: number | null = null;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    normal() {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      // Box-Muller; 1 - u keeps the log finite.
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    poisson(lambda) {
      if (!(lambda > 0)) return 0;
      if (lambda < 30) {
        // Knuth's product method: exact, cheap for small means.
        const l = Math.exp(-lambda);
        let k = 0;
        let p = 1;
        do {
          k++;
          p *= next();
        } while (p > l);
        return k - 1;
      }
      // Normal approximation with continuity correction for large means.
      return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * rng.normal()));
    },
    shuffle(arr) {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [arr[i], arr[j]] = [arr[j], arr[i]];
      }
      return arr;
    },
    fork: (label) => createRng(hashString(label, a)),
    state: () => a,
  };
  return rng;
}
