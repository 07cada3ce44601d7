// Graph files: YAML keyed by node id, wired by "<node>.<port>" references (docs/architecture.md §3).
// Loading collects every problem it can find, each located at file:line:col, before anything runs.
// The steps, in order: top-level keys, name and description, graph params and --set overrides,
// seed; block instances expanded into plain nodes (core/graph/blocks.ts: `blocks:` and `use:`,
// whose header has the rules); stages; edges with their payload types; a topological order;
// node params substituted, overridden and checked against each stage's schema.
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import type { Registry } from '../registry.ts';
import type { StageDescriptor } from '../stage.ts';
import { stageKey } from '../stage.ts';
import { expandNodes, siteDiag, type NodeSite } from './blocks.ts';
import { applyProfile } from './profiles.ts';
import { type Diagnostic, didYouMean, listOf, pathString } from './diagnostics.ts';
import { GraphSource, type Path, isPlainObject, typeName } from './source.ts';

export { GraphSource } from './source.ts';

export interface EdgeRef {
  node: string;
  port: string;
}

export interface ResolvedNode {
  id: string;
  stage: StageDescriptor<any>;
  description?: string;
  /** Params after graph-param substitution, overrides and defaults. */
  params: Record<string, unknown>;
  /** For each input port, the upstream outputs feeding it (merged in order). */
  inputs: Record<string, EdgeRef[]>;
}

export interface ResolvedGraph {
  file: string;
  name: string;
  description: string;
  seed: number;
  /** Extra plugin folders named by the graph, absolute. */
  plugins: string[];
  /** Graph-level params with overrides applied. */
  params: Record<string, unknown>;
  /** Nodes in a topological order (upstream before downstream, file order otherwise), blocks expanded. */
  nodes: ResolvedNode[];
}

export interface LoadOptions {
  /** `--set key=value` pairs: a graph param name, or `<node>.<param>`; values parsed as YAML. */
  overrides?: Record<string, string>;
  /** Overrides the graph's seed. */
  seed?: number;
  /** Accept required graph params (~) that are not set (checking a file before its values are known). */
  allowUnsetParams?: boolean;
  /** A profile of the file's `profiles:` to apply before the overrides (core/graph/profiles.ts). */
  profile?: string;
}

const TOP_KEYS = ['name', 'description', 'seed', 'plugins', 'params', 'profiles', 'blocks', 'nodes'];
const NODE_KEYS = ['stage', 'in', 'params', 'description'];
const ID_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const REF_RE = /^\$\{([^}]*)\}$/;
const REF_ANY_RE = /\$\{([^}]*)\}/g;
export const DEFAULT_SEED = 42;

type NodeOverrides = Map<string, Map<string, unknown>>;

/** What the steps after expansion share. */
interface Loading {
  src: GraphSource;
  out: Diagnostic[];
  sites: Map<string, NodeSite>;
  stages: Map<string, StageDescriptor<any>>;
}

/** Plugin folders a graph file names, resolved against the file's folder (read before the registry is built). */
export function graphPluginPaths(src: GraphSource): { paths: string[]; diagnostics: Diagnostic[] } {
  if (src.syntaxErrors.length) return { paths: [], diagnostics: [] };
  const raw = src.toJS();
  if (!isPlainObject(raw) || raw.plugins === undefined) return { paths: [], diagnostics: [] };
  const plugins = raw.plugins;
  if (!Array.isArray(plugins) || plugins.some((p) => typeof p !== 'string')) {
    return { paths: [], diagnostics: [src.diag(['plugins'], `expected a list of plugin folder paths, got ${typeName(plugins)}`)] };
  }
  const base = dirname(resolve(src.file));
  return { paths: plugins.map((p) => resolve(base, p)), diagnostics: [] };
}

export function loadGraphText(text: string, file: string, registry: Registry, opts: LoadOptions = {}): { graph?: ResolvedGraph; diagnostics: Diagnostic[] } {
  return loadGraphSource(new GraphSource(text, file), registry, opts);
}

export function loadGraphSource(src: GraphSource, registry: Registry, opts: LoadOptions = {}): { graph?: ResolvedGraph; diagnostics: Diagnostic[] } {
  if (src.syntaxErrors.length) return { diagnostics: src.syntaxErrors };
  const out: Diagnostic[] = [];
  const raw = src.toJS();
  if (!isPlainObject(raw)) {
    return { diagnostics: [src.diag([], `a graph file is a mapping with 'nodes' (and optionally ${listOf(TOP_KEYS.filter((k) => k !== 'nodes'))}), got ${typeName(raw)}`)] };
  }
  for (const k of Object.keys(raw)) {
    if (!TOP_KEYS.includes(k)) out.push(src.diag([k], `unknown top-level key '${k}'${didYouMean(k, TOP_KEYS)}; expected ${listOf(TOP_KEYS)}`, true));
  }
  const { name, description } = readHeader(raw, src, out);
  const plugins = graphPluginPaths(src);
  out.push(...plugins.diagnostics);
  const params = readGraphParams(raw.params, src, out);
  applyProfile(raw.profiles, opts.profile, params, src, out);
  const nodeOverrides = applyOverrides(params, opts.overrides ?? {}, out);
  const fileSeed = readSeed(raw.seed, params, src, out);
  const seed = opts.seed ?? fileSeed;

  if (raw.nodes === undefined || raw.nodes === null) {
    out.push(src.diag([], `the graph has no 'nodes' mapping`));
    return { diagnostics: out };
  }
  if (!isPlainObject(raw.nodes)) {
    out.push(src.diag(['nodes'], `nodes must be a mapping of node id to node, got ${typeName(raw.nodes)}`));
    return { diagnostics: out };
  }
  const sites = expandNodes(raw.nodes, raw.blocks, src, out);
  for (const [node] of nodeOverrides) {
    if (!sites.has(node)) out.push({ file: '--set', line: 0, col: 0, path: node, message: `unknown node '${node}'${didYouMean(node, sites.keys())}` });
  }
  const g: Loading = { src, out, sites, stages: resolveStages(sites, registry, src, out) };
  const inputs = new Map([...sites.keys()].map((id) => [id, wireNode(g, sites.get(id)!)]));
  const order = topologicalOrder([...sites.keys()], inputs, (id, message) => siteDiag(src, sites.get(id)!, [], message, true), out);
  const resolved: ResolvedNode[] = [];
  for (const id of order ?? sites.keys()) {
    const node = resolveNodeParams(g, sites.get(id)!, params, nodeOverrides.get(id), opts);
    if (node) resolved.push({ ...node, inputs: inputs.get(id) ?? {} });
  }

  if (out.length) return { diagnostics: sortDiagnostics(out) };
  return { graph: { file: src.file, name, description, seed, plugins: plugins.paths, params, nodes: resolved }, diagnostics: [] };
}

function readHeader(raw: Record<string, unknown>, src: GraphSource, out: Diagnostic[]): { name: string; description: string } {
  let name = basename(src.file, extname(src.file)) || 'graph';
  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || !/^[\w.-]+$/.test(raw.name)) out.push(src.diag(['name'], `name must be a word of letters, digits, '.', '_' or '-', got ${JSON.stringify(raw.name)}`));
    else name = raw.name;
  }
  let description = '';
  if (raw.description !== undefined) {
    if (typeof raw.description !== 'string') out.push(src.diag(['description'], `description must be text, got ${typeName(raw.description)}`));
    else description = raw.description;
  }
  return { name, description };
}

function readGraphParams(raw: unknown, src: GraphSource, out: Diagnostic[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (raw === undefined || raw === null) return params;
  if (!isPlainObject(raw)) {
    out.push(src.diag(['params'], `params must be a mapping of name: default value, got ${typeName(raw)}`));
    return params;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out.push(src.diag(['params', k], `graph param name '${k}' must be letters, digits and '_'`, true));
    params[k] = v;
  }
  return params;
}

/** Applies `--set` of graph params to `params`; returns the `<node>.<param>` ones, by node. */
function applyOverrides(params: Record<string, unknown>, overrides: Record<string, string>, out: Diagnostic[]): NodeOverrides {
  const nodeOverrides: NodeOverrides = new Map();
  for (const [key, text] of Object.entries(overrides)) {
    let value: unknown;
    try {
      value = parseYamlValue(text);
    } catch {
      value = text;
    }
    const dot = key.indexOf('.');
    if (dot < 0) {
      if (!Object.hasOwn(params, key)) {
        out.push({ file: '--set', line: 0, col: 0, path: key, message: `unknown graph param '${key}'${didYouMean(key, Object.keys(params))}; this graph's params are ${listOf(Object.keys(params))} (use <node>.<param> to set a node param)` });
      } else params[key] = value;
    } else {
      const node = key.slice(0, dot);
      const m = nodeOverrides.get(node) ?? new Map<string, unknown>();
      m.set(key.slice(dot + 1), value);
      nodeOverrides.set(node, m);
    }
  }
  return nodeOverrides;
}

function readSeed(raw: unknown, params: Record<string, unknown>, src: GraphSource, out: Diagnostic[]): number {
  if (raw === undefined) return DEFAULT_SEED;
  const before = out.length;
  const s = substitute(raw, ['seed'], params, src, out);
  if (out.length > before) return DEFAULT_SEED; // an unknown ${name}: already reported
  if (!Number.isInteger(s) || (s as number) < 0) {
    out.push(src.diag(['seed'], `seed must be a non-negative integer, got ${JSON.stringify(s)}`));
    return DEFAULT_SEED;
  }
  return s as number;
}

function resolveStages(sites: Map<string, NodeSite>, registry: Registry, src: GraphSource, out: Diagnostic[]): Map<string, StageDescriptor<any>> {
  const stages = new Map<string, StageDescriptor<any>>();
  for (const [id, site] of sites) {
    const n = site.node;
    if (!ID_RE.test(id)) out.push(siteDiag(src, site, [], `node id '${id}' must start with a letter and use letters, digits, '_' or '-'`, true));
    if (!isPlainObject(n)) {
      out.push(siteDiag(src, site, [], `a node is a mapping with 'stage' (and optionally 'in', 'params', 'description'), or 'use: <block>', got ${typeName(n)}`));
      continue;
    }
    for (const k of Object.keys(n)) {
      if (!NODE_KEYS.includes(k)) out.push(siteDiag(src, site, [k], `unknown node key '${k}'${didYouMean(k, NODE_KEYS)}; expected ${listOf(NODE_KEYS)}`, true));
    }
    const stage = resolveStage(n.stage, site, registry, src, out);
    if (stage) stages.set(id, stage);
  }
  return stages;
}

/** Checks a node's references, ports and payload types; returns its wired inputs. */
function wireNode(g: Loading, site: NodeSite): Record<string, EdgeRef[]> {
  const { id, node: n } = site;
  const wired: Record<string, EdgeRef[]> = {};
  if (!isPlainObject(n)) return wired;
  const stage = g.stages.get(id);
  const diag = (rest: Path, message: string, key = false) => g.out.push(siteDiag(g.src, site, rest, message, key));
  if (n.in !== undefined && n.in !== null && !isPlainObject(n.in)) diag(['in'], `'in' must map input ports to "<node>.<port>" references, got ${typeName(n.in)}`);
  for (const [port, refs] of Object.entries(isPlainObject(n.in) ? n.in : {})) {
    const portSpec = stage?.inputs[port];
    if (stage && !portSpec) {
      diag(['in', port], `stage ${stageKey(stage)} has no input port '${port}'${didYouMean(port, Object.keys(stage.inputs))}; its inputs are ${listOf(Object.keys(stage.inputs))}`, true);
      continue;
    }
    const edges: EdgeRef[] = [];
    (Array.isArray(refs) ? refs : [refs]).forEach((ref, i) => {
      const p = Array.isArray(refs) ? ['in', port, i] : ['in', port];
      const e = resolveRef(ref, p, site, g);
      if (!e) return;
      if (e.node === id) return diag(p, `cycle: node '${id}' feeds itself`);
      const outType = g.stages.get(e.node)?.outputs[e.port]?.type;
      if (portSpec && outType && outType !== portSpec.type) return diag(p, `type mismatch: ${e.node}.${e.port} carries ${outType} but ${id}.${port} expects ${portSpec.type}`);
      edges.push(e);
    });
    wired[port] = edges;
  }
  for (const [port, spec] of Object.entries(stage?.inputs ?? {})) {
    const given = isPlainObject(n.in) && Object.hasOwn(n.in, port);
    if (!spec.optional && !given) diag(isPlainObject(n.in) ? ['in'] : [], `input port '${port}' (${spec.type}) is not connected; write in: { ${port}: <node>.<port> }`);
  }
  return wired;
}

/** Substitutes graph params, applies node overrides and checks the result against the stage schema. */
function resolveNodeParams(g: Loading, site: NodeSite, params: Record<string, unknown>, overrides: Map<string, unknown> | undefined, opts: LoadOptions): Omit<ResolvedNode, 'inputs'> | undefined {
  const { id, node: n } = site;
  const stage = g.stages.get(id);
  if (!isPlainObject(n) || !stage) return undefined;
  const diag = (rest: Path, message: string, key = false) => g.out.push(siteDiag(g.src, site, ['params', ...rest], message, key));
  const given: Record<string, unknown> = {};
  if (n.params !== undefined && n.params !== null) {
    if (!isPlainObject(n.params)) return diag([], `params must be a mapping, got ${typeName(n.params)}`), undefined;
    // Substitute param by param: a param whose references failed (already reported) or, when
    // validating, names a required graph param that is not set yet, is left to the stage default.
    for (const [k, v] of Object.entries(n.params)) {
      const probe: Diagnostic[] = [];
      const value = substitute(v, ['params', k], params, g.src, probe, site);
      const unsetOnly = probe.length > 0 && probe.every((d) => d.message.includes('has no value: give it with --set'));
      if (unsetOnly && opts.allowUnsetParams) continue;
      g.out.push(...probe);
      if (probe.length === 0) given[k] = value;
    }
  }
  const fromSet = new Set<string>();
  for (const [k, v] of overrides ?? []) {
    given[k] = v;
    fromSet.add(k);
  }
  const known = Object.keys(stage.params.shape);
  const clean: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) {
    if (known.includes(k)) clean[k] = v;
    else if (fromSet.has(k)) g.out.push({ file: '--set', line: 0, col: 0, path: `${id}.${k}`, message: `stage ${stageKey(stage)} has no param '${k}'${didYouMean(k, known)}` });
    else diag([k], `unknown param '${k}' for stage ${stageKey(stage)}${didYouMean(k, known)}; its params are ${listOf(known)}`, true);
  }
  const parsed = stage.params.safeParse(clean);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const p = issue.path.map((x: PropertyKey) => (typeof x === 'symbol' ? String(x) : x));
      const top = String(issue.path[0] ?? '');
      const origin = fromSet.has(top) ? ' (value from --set)' : refNote(n.params, top);
      const exists = isPlainObject(n.params) && Object.hasOwn(n.params, top);
      if (fromSet.has(top)) g.out.push({ file: '--set', line: 0, col: 0, path: `${id}.${pathString(issue.path as (string | number)[])}`, message: issue.message });
      else diag(exists ? p : [], `${issue.message}${origin}`);
    }
    return undefined;
  }
  return { id, stage, description: typeof n.description === 'string' ? n.description : undefined, params: parsed.data };
}

/** --set problems first, then file order. */
function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => (a.line === 0 ? -1 : 0) - (b.line === 0 ? -1 : 0) || a.line - b.line || a.col - b.col);
}

function refNote(rawParams: unknown, key: string): string {
  if (!isPlainObject(rawParams)) return '';
  const v = rawParams[key];
  const m = typeof v === 'string' ? REF_RE.exec(v) : null;
  return m ? ` (value from graph param '${m[1]}')` : '';
}

function resolveStage(ref: unknown, site: NodeSite, registry: Registry, src: GraphSource, out: Diagnostic[]): StageDescriptor<any> | undefined {
  const report = (message: string) => out.push(siteDiag(src, site, ['stage'], message));
  if (typeof ref !== 'string') {
    out.push(siteDiag(src, site, [], `every node needs 'stage: <id>@<version>' (e.g. spike-binning@1), or 'use: <block>'`));
    return undefined;
  }
  const m = /^([a-z][a-z0-9-]*)(?:@(\d+))?$/.exec(ref.trim());
  if (!m) {
    report(`'${ref}' is not a stage reference; write <id>@<version>, e.g. spike-binning@1`);
    return undefined;
  }
  const [, id, v] = m;
  const versions = registry.versions(id);
  if (!versions.length) {
    report(`unknown stage '${id}'${didYouMean(id, registry.stageIds())}; run 'mtm stages' to list them`);
    return undefined;
  }
  if (v === undefined) {
    report(`stage versions must be pinned: write ${id}@${versions[versions.length - 1]}`);
    return undefined;
  }
  const stage = registry.stage(id, Number(v));
  if (!stage) report(`stage '${id}' has no version ${v}; available: ${versions.map((x) => `${id}@${x}`).join(', ')}`);
  return stage;
}

function resolveRef(ref: unknown, at: Path, site: NodeSite, g: Loading): EdgeRef | undefined {
  const report = (message: string) => (g.out.push(siteDiag(g.src, site, at, message)), undefined);
  if (typeof ref !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(ref)) return report(`expected "<node>.<port>", got ${JSON.stringify(ref)}`);
  const [node, port] = ref.split('.');
  if (!g.sites.has(node)) return report(`unknown node '${node}'${didYouMean(node, g.sites.keys())}`);
  const stage = g.stages.get(node);
  if (stage && !Object.hasOwn(stage.outputs, port)) {
    return report(`node '${node}' (${stageKey(stage)}) has no output port '${port}'${didYouMean(port, Object.keys(stage.outputs))}; its outputs are ${listOf(Object.keys(stage.outputs))}`);
  }
  return { node, port };
}

/** Replaces ${name} references to graph params; a whole-value reference keeps the param's type. */
function substitute(value: unknown, at: Path, params: Record<string, unknown>, src: GraphSource, out: Diagnostic[], site?: NodeSite): unknown {
  const diag = (message: string) => (site ? siteDiag(src, site, at, message) : src.diag(at, message));
  if (typeof value === 'string') {
    const whole = REF_RE.exec(value);
    const lookup = (name: string): unknown => {
      if (Object.hasOwn(params, name) && params[name] === null) {
        // A graph param left as ~ (null) is one the user must give.
        out.push(diag(`graph param '${name}' has no value: give it with --set ${name}=<value>`));
        return undefined;
      }
      if (Object.hasOwn(params, name)) return params[name];
      out.push(diag(`unknown graph param '\${${name}}'${didYouMean(name, Object.keys(params))}; declare it under params:`));
      return undefined;
    };
    if (whole) return lookup(whole[1].trim());
    return value.replace(REF_ANY_RE, (_, name: string) => {
      const v = lookup(name.trim());
      return v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, [...at, i], params, src, out, site));
  if (isPlainObject(value)) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) o[k] = substitute(v, [...at, k], params, src, out, site);
    return o;
  }
  return value;
}

/** Kahn's algorithm in file order; on a cycle, reports each cycle's members and returns undefined. */
function topologicalOrder(ids: string[], inputs: Map<string, Record<string, EdgeRef[]>>, at: (id: string, message: string) => Diagnostic, out: Diagnostic[]): string[] | undefined {
  const upstream = new Map<string, Set<string>>();
  for (const id of ids) {
    const s = new Set<string>();
    for (const edges of Object.values(inputs.get(id) ?? {})) for (const e of edges) if (e.node !== id) s.add(e.node);
    upstream.set(id, s);
  }
  const done = new Set<string>();
  const order: string[] = [];
  let progress = true;
  while (progress) {
    progress = false;
    for (const id of ids) {
      if (done.has(id)) continue;
      if ([...upstream.get(id)!].every((u) => done.has(u))) {
        done.add(id);
        order.push(id);
        progress = true;
      }
    }
  }
  if (order.length === ids.length) return order;
  // Report each cycle once: walk upstream links from a blocked node until a node repeats.
  const reported = new Set<string>();
  for (const start of ids) {
    if (done.has(start) || reported.has(start)) continue;
    const path: string[] = [];
    let cur = start;
    while (!path.includes(cur)) {
      path.push(cur);
      cur = [...upstream.get(cur)!].find((u) => !done.has(u))!;
    }
    // Upstream walk reversed = flow order; start the listing at the member declared first.
    const flow = path.slice(path.indexOf(cur)).reverse();
    const first = flow.reduce((a, b) => (ids.indexOf(a) <= ids.indexOf(b) ? a : b));
    const cycle = [...flow.slice(flow.indexOf(first)), ...flow.slice(0, flow.indexOf(first))];
    if (cycle.some((c) => reported.has(c))) continue;
    cycle.forEach((c) => reported.add(c));
    out.push(at(cycle[0], `cycle: ${[...cycle, cycle[0]].join(' -> ')}`));
  }
  return undefined;
}

/** The resolved graph as a plain object, written as YAML into every run directory. */
export function resolvedGraphObject(g: ResolvedGraph): Record<string, unknown> {
  const nodes: Record<string, unknown> = {};
  for (const n of g.nodes) {
    const inp: Record<string, string | string[]> = {};
    for (const [port, edges] of Object.entries(n.inputs)) {
      const refs = edges.map((e) => `${e.node}.${e.port}`);
      inp[port] = refs.length === 1 ? refs[0] : refs;
    }
    nodes[n.id] = {
      stage: stageKey(n.stage),
      ...(n.description ? { description: n.description } : {}),
      ...(Object.keys(inp).length ? { in: inp } : {}),
      params: n.params,
    };
  }
  return {
    name: g.name,
    ...(g.description ? { description: g.description } : {}),
    seed: g.seed,
    ...(g.plugins.length ? { plugins: g.plugins } : {}),
    ...(Object.keys(g.params).length ? { params: g.params } : {}),
    nodes,
  };
}
