// A graph file's parsed YAML, and the means to point at any path in it (file:line:col).
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { type Diagnostic, pathString } from './diagnostics.ts';

/** A field path as typed in the file: keys and list indices. */
export type Path = (string | number)[];

/**
 * Limits on what a graph file may cost to read (docs/architecture.md §3): graph files are a few
 * kB, so a file over MAX_GRAPH_BYTES is refused before parsing, and anchors may be expanded at
 * most MAX_ALIAS_COUNT times (a "billion laughs" alias bomb turns kilobytes into gigabytes).
 */
export const MAX_GRAPH_BYTES = 1024 * 1024;
export const MAX_ALIAS_COUNT = 100;

/** A parsed YAML document plus the means to point at any path in it. */
export class GraphSource {
  readonly lineCounter = new LineCounter();
  readonly doc: Document.Parsed;
  readonly syntaxErrors: Diagnostic[];
  #value: unknown;

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_GRAPH_BYTES) {
      this.doc = parseDocument('', { lineCounter: this.lineCounter });
      this.syntaxErrors = [{ file, line: 1, col: 1, path: '', message: `graph file too large: ${bytes} bytes (at most ${MAX_GRAPH_BYTES}; graph files are a few kB)` }];
      return;
    }
    this.doc = parseDocument(text, { lineCounter: this.lineCounter, prettyErrors: false, uniqueKeys: true });
    const lines = text.split('\n');
    const all = this.doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? this.lineCounter.linePos(e.pos[0]);
      // A bare ${name} inside { } or [ ] is the usual cause of a burst of flow errors.
      const hint = /[{[][^}\]]*\$\{/.test(lines[pos.line - 1] ?? '') ? ' (inside { } or [ ], quote references: "${name}")' : '';
      return { file, line: pos.line, col: pos.col, path: '', message: `YAML syntax: ${firstLine(e.message)}${hint}` };
    });
    // One mistake can make the parser report dozens of errors: keep the first on each line, at most 10.
    const seen = new Set<number>();
    this.syntaxErrors = all.filter((d) => !seen.has(d.line) && seen.add(d.line)).slice(0, 10);
    if (!this.syntaxErrors.length) {
      try {
        this.#value = this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      } catch (e) {
        // yaml throws a ReferenceError for excessive aliases; any failure here is the file's.
        this.syntaxErrors = [{ file, line: 1, col: 1, path: '', message: `YAML: ${firstLine((e as Error).message)} (anchors may expand at most ${MAX_ALIAS_COUNT} aliases)` }];
      }
    }
  }

  /** The document as plain values (read once; undefined when there are syntax errors). */
  toJS(): unknown {
    // A copy: callers may fill in defaults without changing what the next caller reads.
    return this.#value === undefined ? undefined : structuredClone(this.#value);
  }

  /** Line and column of the value at `path` (or of its key when `key` is set); the nearest existing parent otherwise. */
  locate(path: Path, key = false): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let found: YamlNode | undefined = node as YamlNode;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (last && key && isScalar(pair.key)) {
          found = pair.key;
          break;
        }
        node = pair.value;
        if (node) found = node as YamlNode;
        else if (isScalar(pair.key)) found = pair.key;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        node = node.items[seg];
        found = node as YamlNode;
      } else break;
    }
    const offset = found?.range?.[0] ?? 0;
    return this.lineCounter.linePos(offset);
  }

  diag(path: Path, message: string, key = false): Diagnostic {
    const { line, col } = this.locate(path, key);
    return { file: this.file, line, col, path: pathString(path), message };
  }

  /** The value written at `path` (before any substitution), or undefined. */
  valueAt(path: Path): unknown {
    try {
      const v = this.doc.getIn(path);
      return isScalar(v) ? v.value : v;
    } catch {
      return undefined;
    }
  }
}

export function firstLine(s: string): string {
  return s.split('\n')[0];
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function typeName(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a list';
  if (typeof x === 'object') return 'a mapping';
  return `a ${typeof x}`;
}
