// Graph files: YAML keyed by node id, wired by "<node>.<port>" references (DESIGN.md examples 3-4).
// Loading collects every problem it can find, each located at file:line:col, before anything runs.
import { basename, dirname, extname, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, parse as parseYamlValue, type Document, type Node as YamlNode } from 'yaml';
import type { Registry } from '../registry.ts';
import type { StageDescriptor } from '../stage.ts';
import { stageKey } from '../stage.ts';
import { type Diagnostic, didYouMean, listOf, pathString } from './diagnostics.ts';

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
  /** Nodes in a topological order (upstream before downstream, file order otherwise). */
  nodes: ResolvedNode[];
}

export interface LoadOptions {
  /** `--set key=value` pairs: a graph param name, or `<node>.<param>`; values parsed as YAML. */
  overrides?: Record<string, string>;
  /** Overrides the graph's seed. */
  seed?: number;
  /** Accept required graph params (~) that are not set (checking a file before its values are known). */
  allowUnsetParams?: boolean;
}

const TOP_KEYS = ['name', 'description', 'seed', 'plugins', 'params', 'nodes'];
const NODE_KEYS = ['stage', 'in', 'params', 'description'];
const ID_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const REF_RE = /^\$\{([^}]*)\}$/;
const REF_ANY_RE = /\$\{([^}]*)\}/g;
export const DEFAULT_SEED = 42;

/** A parsed YAML document plus the means to point at any path in it. */
export class GraphSource {
  readonly lineCounter = new LineCounter();
  readonly doc: Document.Parsed;
  readonly syntaxErrors: Diagnostic[];

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
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
  }

  /** Line and column of the value at `path` (or of its key when `key` is set); the nearest existing parent otherwise. */
  locate(path: (string | number)[], key = false): { line: number; col: number } {
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

  diag(path: (string | number)[], message: string, key = false): Diagnostic {
    const { line, col } = this.locate(path, key);
    return { file: this.file, line, col, path: pathString(path), message };
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function typeName(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a list';
  if (typeof x === 'object') return 'a mapping';
  return `a ${typeof x}`;
}

/** Plugin folders a graph file names, resolved against the file's folder (read before the registry is built). */
export function graphPluginPaths(src: GraphSource): { paths: string[]; diagnostics: Diagnostic[] } {
  if (src.syntaxErrors.length) return { paths: [], diagnostics: [] };
  const raw = src.doc.toJS() as unknown;
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
  const file = src.file;
  if (src.syntaxErrors.length) return { diagnostics: src.syntaxErrors };
  const out: Diagnostic[] = [];
  const raw = src.doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (!isPlainObject(raw)) {
    return { diagnostics: [src.diag([], `a graph file is a mapping with 'nodes' (and optionally ${listOf(TOP_KEYS.filter((k) => k !== 'nodes'))}), got ${typeName(raw)}`)] };
  }
  for (const k of Object.keys(raw)) {
    if (!TOP_KEYS.includes(k)) out.push(src.diag([k], `unknown top-level key '${k}'${didYouMean(k, TOP_KEYS)}; expected ${listOf(TOP_KEYS)}`, true));
  }

  // Name, description, plugins.
  const fallbackName = basename(file, extname(file)) || 'graph';
  let name = fallbackName;
  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || !/^[\w.-]+$/.test(raw.name)) out.push(src.diag(['name'], `name must be a word of letters, digits, '.', '_' or '-', got ${JSON.stringify(raw.name)}`));
    else name = raw.name;
  }
  let description = '';
  if (raw.description !== undefined) {
    if (typeof raw.description !== 'string') out.push(src.diag(['description'], `description must be text, got ${typeName(raw.description)}`));
    else description = raw.description;
  }
  const plugins = graphPluginPaths(src);
  out.push(...plugins.diagnostics);

  // Graph params, then --set overrides of graph params.
  const params: Record<string, unknown> = {};
  if (raw.params !== undefined && raw.params !== null) {
    if (!isPlainObject(raw.params)) out.push(src.diag(['params'], `params must be a mapping of name: default value, got ${typeName(raw.params)}`));
    else {
      for (const [k, v] of Object.entries(raw.params)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out.push(src.diag(['params', k], `graph param name '${k}' must be letters, digits and '_'`, true));
        params[k] = v;
      }
    }
  }
  const nodeOverrides = new Map<string, Map<string, unknown>>();
  for (const [key, text] of Object.entries(opts.overrides ?? {})) {
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

  // Seed.
  let seed = DEFAULT_SEED;
  if (raw.seed !== undefined) {
    const before = out.length;
    const s = substitute(raw.seed, ['seed'], params, src, out);
    if (out.length > before) {
      /* an unknown ${name}: already reported */
    } else if (!Number.isInteger(s) || (s as number) < 0) out.push(src.diag(['seed'], `seed must be a non-negative integer, got ${JSON.stringify(s)}`));
    else seed = s as number;
  }
  if (opts.seed !== undefined) seed = opts.seed;

  // Nodes.
  if (raw.nodes === undefined || raw.nodes === null) {
    out.push(src.diag([], `the graph has no 'nodes' mapping`));
    return { diagnostics: out };
  }
  if (!isPlainObject(raw.nodes)) {
    out.push(src.diag(['nodes'], `nodes must be a mapping of node id to node, got ${typeName(raw.nodes)}`));
    return { diagnostics: out };
  }
  const rawNodes = raw.nodes;
  const nodeIds = Object.keys(rawNodes);
  for (const [node] of nodeOverrides) {
    if (!Object.hasOwn(rawNodes, node)) out.push({ file: '--set', line: 0, col: 0, path: node, message: `unknown node '${node}'${didYouMean(node, nodeIds)}` });
  }

  const stages = new Map<string, StageDescriptor<any>>();
  for (const id of nodeIds) {
    const n = rawNodes[id];
    const at = ['nodes', id];
    if (!ID_RE.test(id)) out.push(src.diag(at, `node id '${id}' must start with a letter and use letters, digits, '_' or '-'`, true));
    if (!isPlainObject(n)) {
      out.push(src.diag(at, `a node is a mapping with 'stage' (and optionally 'in', 'params', 'description'), got ${typeName(n)}`));
      continue;
    }
    for (const k of Object.keys(n)) {
      if (!NODE_KEYS.includes(k)) out.push(src.diag([...at, k], `unknown node key '${k}'${didYouMean(k, NODE_KEYS)}; expected ${listOf(NODE_KEYS)}`, true));
    }
    const stage = resolveStage(n.stage, [...at, 'stage'], registry, src, out);
    if (stage) stages.set(id, stage);
  }

  // Edges: check references, ports and payload types.
  const inputs = new Map<string, Record<string, EdgeRef[]>>();
  for (const id of nodeIds) {
    const n = rawNodes[id];
    if (!isPlainObject(n)) continue;
    const stage = stages.get(id);
    const at = ['nodes', id, 'in'];
    const wired: Record<string, EdgeRef[]> = {};
    inputs.set(id, wired);
    if (n.in !== undefined && n.in !== null) {
      if (!isPlainObject(n.in)) {
        out.push(src.diag(at, `'in' must map input ports to "<node>.<port>" references, got ${typeName(n.in)}`));
      } else {
        for (const [port, refs] of Object.entries(n.in)) {
          const portSpec = stage?.inputs[port];
          if (stage && !portSpec) {
            out.push(src.diag([...at, port], `stage ${stageKey(stage)} has no input port '${port}'${didYouMean(port, Object.keys(stage.inputs))}; its inputs are ${listOf(Object.keys(stage.inputs))}`, true));
            continue;
          }
          const list = Array.isArray(refs) ? refs : [refs];
          const edges: EdgeRef[] = [];
          list.forEach((ref, i) => {
            const p = Array.isArray(refs) ? [...at, port, i] : [...at, port];
            const e = resolveRef(ref, p, rawNodes, stages, src, out);
            if (!e) return;
            if (e.node === id) {
              out.push(src.diag(p, `cycle: node '${id}' feeds itself`));
              return;
            }
            const upstream = stages.get(e.node);
            const outType = upstream?.outputs[e.port]?.type;
            if (portSpec && outType && outType !== portSpec.type) {
              out.push(src.diag(p, `type mismatch: ${e.node}.${e.port} carries ${outType} but ${id}.${port} expects ${portSpec.type}`));
              return;
            }
            edges.push(e);
          });
          wired[port] = edges;
        }
      }
    }
    if (stage) {
      for (const [port, spec] of Object.entries(stage.inputs)) {
        const given = isPlainObject(n.in) && Object.hasOwn(n.in, port);
        if (!spec.optional && !given) out.push(src.diag(isPlainObject(n.in) ? at : ['nodes', id], `input port '${port}' (${spec.type}) is not connected; write in: { ${port}: <node>.<port> }`));
      }
    }
  }

  const order = topologicalOrder(nodeIds, inputs, src, out);

  // Params: substitute graph params, apply node overrides, check against the stage schema.
  const resolved: ResolvedNode[] = [];
  for (const id of order ?? nodeIds) {
    const n = rawNodes[id];
    const stage = stages.get(id);
    if (!isPlainObject(n) || !stage) continue;
    const at = ['nodes', id, 'params'];
    let given: Record<string, unknown> = {};
    if (n.params !== undefined && n.params !== null) {
      if (!isPlainObject(n.params)) {
        out.push(src.diag(at, `params must be a mapping, got ${typeName(n.params)}`));
        continue;
      }
      // Substitute param by param: a param whose references failed (already reported) or, when
      // validating, names a required graph param that is not set yet, is left to the stage default.
      for (const [k, v] of Object.entries(n.params)) {
        const probe: Diagnostic[] = [];
        const value = substitute(v, [...at, k], params, src, probe);
        const unsetOnly = probe.length > 0 && probe.every((d) => d.message.includes('has no value: give it with --set'));
        if (unsetOnly && opts.allowUnsetParams) continue;
        out.push(...probe);
        if (probe.length === 0) given[k] = value;
      }
    }
    const fromSet = new Set<string>();
    for (const [k, v] of nodeOverrides.get(id) ?? []) {
      given[k] = v;
      fromSet.add(k);
    }
    const known = Object.keys(stage.params.shape);
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(given)) {
      if (known.includes(k)) clean[k] = v;
      else if (fromSet.has(k)) out.push({ file: '--set', line: 0, col: 0, path: `${id}.${k}`, message: `stage ${stageKey(stage)} has no param '${k}'${didYouMean(k, known)}` });
      else out.push(src.diag([...at, k], `unknown param '${k}' for stage ${stageKey(stage)}${didYouMean(k, known)}; its params are ${listOf(known)}`, true));
    }
    const parsed = stage.params.safeParse(clean);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const p = [...at, ...issue.path.map((x: PropertyKey) => (typeof x === 'symbol' ? String(x) : x))];
        const top = String(issue.path[0] ?? '');
        const origin = fromSet.has(top) ? ' (value from --set)' : refNote(n.params, top);
        const exists = isPlainObject(n.params) && Object.hasOwn(n.params, top);
        if (fromSet.has(top)) out.push({ file: '--set', line: 0, col: 0, path: `${id}.${pathString(issue.path as (string | number)[])}`, message: issue.message });
        else out.push(src.diag(exists ? p : at, `${issue.message}${origin}`));
      }
      continue;
    }
    resolved.push({ id, stage, description: typeof n.description === 'string' ? n.description : undefined, params: parsed.data, inputs: inputs.get(id) ?? {} });
  }

  if (out.length) return { diagnostics: sortDiagnostics(out) };
  return { graph: { file, name, description, seed, plugins: plugins.paths, params, nodes: resolved }, diagnostics: [] };
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

function resolveStage(ref: unknown, at: (string | number)[], registry: Registry, src: GraphSource, out: Diagnostic[]): StageDescriptor<any> | undefined {
  if (typeof ref !== 'string') {
    out.push(src.diag(at.slice(0, -1), `every node needs 'stage: <id>@<version>' (e.g. spike-binning@1)`));
    return undefined;
  }
  const m = /^([a-z][a-z0-9-]*)(?:@(\d+))?$/.exec(ref.trim());
  if (!m) {
    out.push(src.diag(at, `'${ref}' is not a stage reference; write <id>@<version>, e.g. spike-binning@1`));
    return undefined;
  }
  const [, id, v] = m;
  const versions = registry.versions(id);
  if (!versions.length) {
    out.push(src.diag(at, `unknown stage '${id}'${didYouMean(id, registry.stageIds())}; run 'mtm stages' to list them`));
    return undefined;
  }
  if (v === undefined) {
    out.push(src.diag(at, `stage versions must be pinned: write ${id}@${versions[versions.length - 1]}`));
    return undefined;
  }
  const stage = registry.stage(id, Number(v));
  if (!stage) out.push(src.diag(at, `stage '${id}' has no version ${v}; available: ${versions.map((x) => `${id}@${x}`).join(', ')}`));
  return stage;
}

function resolveRef(
  ref: unknown,
  at: (string | number)[],
  rawNodes: Record<string, unknown>,
  stages: Map<string, StageDescriptor<any>>,
  src: GraphSource,
  out: Diagnostic[],
): EdgeRef | undefined {
  if (typeof ref !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(ref)) {
    out.push(src.diag(at, `expected "<node>.<port>", got ${JSON.stringify(ref)}`));
    return undefined;
  }
  const [node, port] = ref.split('.');
  if (!Object.hasOwn(rawNodes, node)) {
    out.push(src.diag(at, `unknown node '${node}'${didYouMean(node, Object.keys(rawNodes))}`));
    return undefined;
  }
  const stage = stages.get(node);
  if (stage && !Object.hasOwn(stage.outputs, port)) {
    out.push(src.diag(at, `node '${node}' (${stageKey(stage)}) has no output port '${port}'${didYouMean(port, Object.keys(stage.outputs))}; its outputs are ${listOf(Object.keys(stage.outputs))}`));
    return undefined;
  }
  return { node, port };
}

/** Replaces ${name} references to graph params; a whole-value reference keeps the param's type. */
function substitute(value: unknown, at: (string | number)[], params: Record<string, unknown>, src: GraphSource, out: Diagnostic[]): unknown {
  if (typeof value === 'string') {
    const whole = REF_RE.exec(value);
    const lookup = (name: string): unknown => {
      if (Object.hasOwn(params, name) && params[name] === null) {
        // A graph param left as ~ (null) is one the user must give.
        out.push(src.diag(at, `graph param '${name}' has no value: give it with --set ${name}=<value>`));
        return undefined;
      }
      if (Object.hasOwn(params, name)) return params[name];
      out.push(src.diag(at, `unknown graph param '\${${name}}'${didYouMean(name, Object.keys(params))}; declare it under params:`));
      return undefined;
    };
    if (whole) return lookup(whole[1].trim());
    return value.replace(REF_ANY_RE, (_, name: string) => {
      const v = lookup(name.trim());
      return v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, [...at, i], params, src, out));
  if (isPlainObject(value)) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) o[k] = substitute(v, [...at, k], params, src, out);
    return o;
  }
  return value;
}

/** Kahn's algorithm in file order; on a cycle, reports each cycle's members and returns undefined. */
function topologicalOrder(ids: string[], inputs: Map<string, Record<string, EdgeRef[]>>, src: GraphSource, out: Diagnostic[]): string[] | undefined {
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
    out.push(src.diag(['nodes', cycle[0]], `cycle: ${[...cycle, cycle[0]].join(' -> ')}`, true));
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
