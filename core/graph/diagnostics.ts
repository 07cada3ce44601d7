// Problems found in a graph file, each located at file:line:col with the field path the user typed.

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  /** Field path as typed in the file, e.g. nodes.bin.params.binSizeMs */
  path: string;
  message: string;
  /** Set when the problem is in a node a block made: that node's id... */
  node?: string;
  /** ...and the block instances that made it, innermost first (see core/graph/blocks.ts). */
  via?: DiagnosticVia[];
}

/** Where a block was instantiated. */
export interface DiagnosticVia {
  block: string;
  file: string;
  line: number;
  col: number;
  path: string;
}

/** Raised for bad input (graph files, --set values, plugin paths): the CLI exits 2 without a stack. */
export class GraphError extends Error {
  constructor(public readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'GraphError';
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const text = d.path ? `${where}  ${d.path}  ${d.message}` : `${where}  ${d.message}`;
  if (!d.via?.length) return text;
  // One line per problem still: the block's location first, then every instance that led there.
  const uses = d.via.map((v) => `block '${v.block}' used at ${v.file}:${v.line}:${v.col} ${v.path}`).join(', in ');
  return `${text}  (node '${d.node}' from ${uses})`;
}

export function pathString(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Damerau-free Levenshtein distance, small inputs only. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** " (did you mean 'x'?)" when a candidate is close enough to be a plausible typo, else "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  const lw = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(lw, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return best !== undefined && bestD <= limit ? ` (did you mean '${best}'?)` : '';
}

export function listOf(names: Iterable<string>): string {
  const a = [...names];
  return a.length ? a.map((n) => `'${n}'`).join(', ') : '(none)';
}
