// Every run leaves a self-describing folder: resolved graph, versions, seed, logs, metrics and
// artifacts (docs/architecture.md §9). run.json is rewritten atomically at each state change, so a
// crash at any point leaves a readable record of how far the run got.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../io/atomic.ts';
import type { RunDirectoryHandle } from '../stage.ts';

export interface RunInfo {
  graph: string;
  graphFile: string;
  status: 'running' | 'completed' | 'failed' | 'interrupted';
  seed: number;
  startedAt: string;
  finishedAt?: string;
  command: string[];
  overrides: Record<string, string>;
  versions: Record<string, string>;
  stages: Record<string, string>;
  plugins: Record<string, string>;
  backend?: string;
  error?: { node?: string; stage?: string; item?: string; message: string };
  nodes?: Record<string, unknown>;
  /** Results the stages pointed to (label and path), printed by `mtm run` at the end. */
  results?: { node: string; label: string; path: string }[];
  /** Earlier runs into the same folder (e.g. a resumed training), oldest first. */
  previousAttempts?: { status: string; startedAt: string; finishedAt?: string }[];
}

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export class RunDirectory implements RunDirectoryHandle {
  readonly root: string;
  private previous: RunInfo | undefined;
  /** What stages announced, in order. */
  readonly results: { node: string; label: string; path: string }[] = [];

  private constructor(root: string) {
    this.root = root;
    mkdirSync(join(root, 'artifacts'), { recursive: true });
    const info = join(root, 'run.json');
    if (existsSync(info)) {
      try {
        this.previous = JSON.parse(readFileSync(info, 'utf8')) as RunInfo;
      } catch {
        this.previous = undefined; // a damaged record is replaced, not fatal
      }
    }
  }

  /** `out` when given (may already exist: a resumed run), else runs/<time>-<graph name>/. */
  static create(graphName: string, out?: string, base = 'runs'): RunDirectory {
    if (out) return new RunDirectory(resolve(out));
    let dir = resolve(base, `${timestamp()}-${graphName}`);
    for (let i = 2; existsSync(dir); i++) dir = resolve(base, `${timestamp()}-${graphName}-${i}`);
    return new RunDirectory(dir);
  }

  get logFile(): string {
    return join(this.root, 'logs.jsonl');
  }

  artifactDir(nodeId: string): string {
    const d = join(this.root, 'artifacts', nodeId);
    mkdirSync(d, { recursive: true });
    return d;
  }

  metric(nodeId: string, record: Record<string, unknown>): void {
    // Synchronous append: a metric line is on disk before the stage moves on.
    appendFileSync(join(this.root, 'metrics.jsonl'), JSON.stringify({ time: new Date().toISOString(), node: nodeId, ...record }) + '\n');
  }

  announce(nodeId: string, label: string, path: string): void {
    this.results.push({ node: nodeId, label, path });
  }

  async writeResolvedGraph(graph: Record<string, unknown>): Promise<void> {
    const header = '# The graph exactly as run: every default filled in. `mtm run` on this file repeats the run.\n';
    await writeFileAtomic(join(this.root, 'graph.resolved.yaml'), header + stringify(graph, { lineWidth: 0 }));
  }

  async writeInfo(info: RunInfo): Promise<void> {
    const prev = this.previous;
    const attempts = prev ? [...(prev.previousAttempts ?? []), { status: prev.status, startedAt: prev.startedAt, finishedAt: prev.finishedAt }] : undefined;
    const full = attempts && info.startedAt !== prev?.startedAt ? { ...info, previousAttempts: attempts } : info;
    await writeFileAtomic(join(this.root, 'run.json'), JSON.stringify(full, null, 2) + '\n');
  }
}
