// Shared by the commands that read a graph: file -> plugins -> registry -> validated graph.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRegistry } from '../di/bootstrap.ts';
import { GraphError, type Diagnostic } from '../graph/diagnostics.ts';
import { GraphSource, graphPluginPaths, loadGraphSource, type ResolvedGraph } from '../graph/load.ts';
import type { Registry } from '../registry.ts';

export interface GraphCliOptions {
  set?: string[];
  /** Validation only: required graph params may still be unset. */
  allowUnsetParams?: boolean;
  plugin?: string[];
  seed?: number;
  /** A profile of the graph file's `profiles:` (applied before --set). */
  profile?: string;
}

/** Parses repeated `--set key=value` flags. */
export function parseSets(sets: string[] = []): { overrides: Record<string, string>; diagnostics: Diagnostic[] } {
  const overrides: Record<string, string> = {};
  const diagnostics: Diagnostic[] = [];
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) diagnostics.push({ file: '--set', line: 0, col: 0, path: s, message: `expected key=value (e.g. --set epochs=3), got '${s}'` });
    else overrides[s.slice(0, eq).trim()] = s.slice(eq + 1);
  }
  return { overrides, diagnostics };
}

export function readGraphFile(file: string): GraphSource {
  if (!existsSync(file)) throw new GraphError([{ file, line: 0, col: 0, path: '', message: 'no such file' }]);
  if (statSync(file).isDirectory()) throw new GraphError([{ file, line: 0, col: 0, path: '', message: 'is a folder, not a graph file' }]);
  return new GraphSource(readFileSync(file, 'utf8'), file);
}

export async function loadGraphForCli(file: string, opts: GraphCliOptions): Promise<{ graph: ResolvedGraph; registry: Registry; overrides: Record<string, string> }> {
  const src = readGraphFile(file);
  const sets = parseSets(opts.set);
  const fromGraph = graphPluginPaths(src);
  const early = [...src.syntaxErrors, ...fromGraph.diagnostics, ...sets.diagnostics];
  if (src.syntaxErrors.length) throw new GraphError(early);
  const registry = await createRegistry({ plugins: [...(opts.plugin ?? []), ...fromGraph.paths] });
  const { graph, diagnostics } = loadGraphSource(src, registry, { overrides: sets.overrides, seed: opts.seed, allowUnsetParams: opts.allowUnsetParams, profile: opts.profile });
  const all = [...sets.diagnostics, ...diagnostics];
  if (all.length || !graph) throw new GraphError(all);
  return { graph, registry, overrides: sets.overrides };
}
