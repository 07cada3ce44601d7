// Shared by the commands that read a graph: file -> plugins -> registry -> validated graph.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRegistry } from '../di/bootstrap.ts';
import { GraphError, type Diagnostic } from '../../core/graph/diagnostics.ts';
import { GraphSource, graphPluginPaths, loadGraphSource, type ResolvedGraph } from '../../core/graph/load.ts';
import { MAX_GRAPH_BYTES } from '../../core/graph/source.ts';
import type { Registry } from '../../core/registry.ts';

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

/**
 * The registry with these plugins. A plugin that throws while it registers is bad input (exit 2,
 * the plugin named), like one that cannot be found; GraphErrors pass as they are.
 */
export async function registryForCli(plugins: string[]): Promise<Registry> {
  try {
    return await createRegistry({ plugins });
  } catch (e) {
    if (e instanceof GraphError) throw e;
    const where = plugins.length ? plugins.join(', ') : 'plugins/';
    throw new GraphError([{ file: where, line: 0, col: 0, path: 'plugin', message: `a plugin failed while registering: ${firstLine(String((e as Error)?.message ?? e))}` }]);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

export function readGraphFile(file: string): GraphSource {
  if (!existsSync(file)) throw new GraphError([{ file, line: 0, col: 0, path: '', message: 'no such file' }]);
  if (statSync(file).isDirectory()) throw new GraphError([{ file, line: 0, col: 0, path: '', message: 'is a folder, not a graph file' }]);
  const size = statSync(file).size;
  // Refused before reading: a graph file is a few kB (docs/architecture.md §3).
  if (size > MAX_GRAPH_BYTES) throw new GraphError([{ file, line: 0, col: 0, path: '', message: `graph file too large: ${size} bytes (at most ${MAX_GRAPH_BYTES}; graph files are a few kB)` }]);
  return new GraphSource(readFileSync(file, 'utf8'), file);
}

export async function loadGraphForCli(file: string, opts: GraphCliOptions): Promise<{ graph: ResolvedGraph; registry: Registry; overrides: Record<string, string> }> {
  const src = readGraphFile(file);
  const sets = parseSets(opts.set);
  const fromGraph = graphPluginPaths(src);
  const early = [...src.syntaxErrors, ...fromGraph.diagnostics, ...sets.diagnostics];
  if (src.syntaxErrors.length) throw new GraphError(early);
  const registry = await registryForCli([...(opts.plugin ?? []), ...fromGraph.paths]);
  const { graph, diagnostics } = loadGraphSource(src, registry, { overrides: sets.overrides, seed: opts.seed, allowUnsetParams: opts.allowUnsetParams, profile: opts.profile });
  const all = [...sets.diagnostics, ...diagnostics];
  if (all.length || !graph) throw new GraphError(all);
  return { graph, registry, overrides: sets.overrides };
}
