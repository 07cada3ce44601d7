// Reusable sub-graphs ("blocks"). Next to `nodes:`, a graph file may define a top-level `blocks:`
// mapping of named, parameterised groups of nodes, and instantiate one with a node that says
// `use: <block>` where a plain node says `stage:`:
//
//   blocks:
//     scheme:                                # two samplers and the model they train
//       params: { mode: ~, prompts: false }  # the block's params and defaults; ~: the instance gives it
//       nodes:
//         ${name}Train:                      # ${name} is the instance's key: temporalTrain
//           stage: masking-sampler@1
//           in: { sessions: label.sessions } # a node outside the block
//           params: { mode: "${mode}", epochs: "${epochs}" }   # a block param; a graph param
//         ${name}:
//           stage: train-model@1
//           in: { train: "${name}Train.batches", ... }        # a node of this instance
//   nodes:
//     temporal: { use: scheme, params: { mode: temporal } }
//     grid: { use: pretrain, foreach: { scheme: [mtm, temporal], size: [{ size: Small, n: 1 }, { size: Large, n: 8 }] } }
//
// Rules (docs/architecture.md §3 has the wider picture of graph loading, §3.4 this summary):
// - Expansion comes first: the graph is checked and run as if the instance's nodes had been
//   written in `nodes:` in its place, in block order. graph.resolved.yaml is that expanded graph,
//   with no blocks left, so `mtm run` on it repeats the run.
// - One namespace, no automatic prefix: a block's node ids are templates (`${name}` and its params)
//   that must come out unique in the whole graph, so ids, `--set <node>.<param>`,
//   artifacts/<node>/ and metrics read as if written by hand. An edge "<node>.<port>" inside a
//   block names an expanded id, of the same instance ("${name}Train.batches") or of any other node
//   ("label.sessions"). A block's inputs are params holding such references; its outputs are the
//   ports of its nodes.
// - `${p}` for a declared block param (or `name`) is replaced in every string of the block's nodes;
//   any other `${x}` is left for the graph params, so a block param shadows a graph param of the
//   same name. A whole-value "${p}" keeps the value's type, as graph params do. Block params are
//   not settable with --set; graph params (which block params may name) are.
// - `foreach:` makes one instance per combination: a mapping of axis -> list is the product of its
//   axes, first axis outermost; a list entry that is a mapping sets several params together, a
//   scalar sets the param named by its axis. A list of mappings is one instance per entry.
// - A block may use other blocks; one that uses itself, directly or not, is an error.
// - A problem in a node a block made is located in the block's text and names the node's id and
//   every instance on the way there; where the value came from a block param, at that param.
import { type Diagnostic, type DiagnosticVia, didYouMean, listOf, pathString } from './diagnostics.ts';
import { type GraphSource, type Path, isPlainObject, typeName } from './source.ts';

/** One instantiation of a block. */
export interface BlockUse {
  block: string;
  /** Where the instance node is written. */
  path: Path;
  /** Where each block param the instance (or its foreach) gave is written. */
  paramAt: Record<string, Path>;
}

/** A node of the expanded graph and where its text is. */
export interface NodeSite {
  id: string;
  /** The node as written, block params substituted (graph params are still ${...}). */
  node: unknown;
  /** ['nodes', id], or ['blocks', <block>, 'nodes', <id template>] for a node a block made. */
  path: Path;
  /** The block instances that made it, innermost first; empty for a node written in nodes:. */
  via: BlockUse[];
}

interface Block {
  params: Record<string, unknown>;
  nodes: Record<string, unknown>;
}

interface ParamSet {
  values: Record<string, unknown>;
  at: Record<string, Path>;
}

interface Scope {
  /** Block params in force; undefined in the graph's own nodes. */
  params?: Record<string, unknown>;
  stack: string[];
  via: BlockUse[];
}

interface Expansion {
  src: GraphSource;
  out: Diagnostic[];
  blocks: Map<string, Block>;
  sites: NodeSite[];
}

const BLOCK_KEYS = ['description', 'params', 'nodes'];
const USE_KEYS = ['use', 'params', 'foreach', 'description'];
const BLOCK_NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const WHOLE_RE = /^\$\{([^}]*)\}$/;
const ANY_RE = /\$\{([^}]*)\}/g;
// Guards against a foreach (or nested ones) that would make an unreadable graph by mistake.
const MAX_COMBINATIONS = 1000;
const MAX_NODES = 10_000;

/** A diagnostic at `rest` inside a site; for a node a block made, with the instances that led there. */
export function siteDiag(src: GraphSource, site: Pick<NodeSite, 'id' | 'path' | 'via'>, rest: Path, message: string, key = false): Diagnostic {
  const path = [...site.path, ...rest];
  const d = src.diag(path, message, key);
  return site.via.length ? { ...d, node: site.id, via: useLocations(src, path, site.via) } : d;
}

/** Each instance's location; at the param that gave the value when the value is a whole "${p}". */
function useLocations(src: GraphSource, path: Path, via: BlockUse[]): DiagnosticVia[] {
  let value = src.valueAt(path);
  return via.map((u) => {
    const m = typeof value === 'string' ? WHOLE_RE.exec(value) : null;
    const given = m ? u.paramAt[m[1].trim()] : undefined;
    value = given ? src.valueAt(given) : undefined;
    const p = given ?? u.path;
    const { line, col } = src.locate(p, !given);
    return { block: u.block, file: src.file, line, col, path: pathString(p) };
  });
}

/** The graph's nodes with every block instance expanded, keyed by node id (duplicates reported). */
export function expandNodes(rawNodes: Record<string, unknown>, rawBlocks: unknown, src: GraphSource, out: Diagnostic[]): Map<string, NodeSite> {
  const x: Expansion = { src, out, blocks: readBlocks(rawBlocks, src, out), sites: [] };
  expandGroup(rawNodes, ['nodes'], { stack: [], via: [] }, x);
  const byId = new Map<string, NodeSite>();
  for (const site of x.sites) {
    const first = byId.get(site.id);
    if (!first) {
      byId.set(site.id, site);
      continue;
    }
    const at = siteDiag(src, first, [], '', true);
    out.push(siteDiag(src, site, [], `node id '${site.id}' is made twice: also at ${src.file}:${at.line}:${at.col} ${at.path}`, true));
  }
  return byId;
}

function readBlocks(raw: unknown, src: GraphSource, out: Diagnostic[]): Map<string, Block> {
  const blocks = new Map<string, Block>();
  if (raw === undefined || raw === null) return blocks;
  if (!isPlainObject(raw)) {
    out.push(src.diag(['blocks'], `blocks must be a mapping of block name to { params, nodes }, got ${typeName(raw)}`));
    return blocks;
  }
  for (const [name, def] of Object.entries(raw)) {
    const at = ['blocks', name];
    if (!BLOCK_NAME_RE.test(name)) out.push(src.diag(at, `block name '${name}' must start with a letter and use letters, digits, '_' or '-'`, true));
    if (!isPlainObject(def)) {
      out.push(src.diag(at, `a block is a mapping with 'nodes' (and optionally 'params', 'description'), got ${typeName(def)}`));
      continue;
    }
    for (const k of Object.keys(def)) {
      if (!BLOCK_KEYS.includes(k)) out.push(src.diag([...at, k], `unknown block key '${k}'${didYouMean(k, BLOCK_KEYS)}; expected ${listOf(BLOCK_KEYS)}`, true));
    }
    if (!isPlainObject(def.nodes) || !Object.keys(def.nodes).length) {
      out.push(src.diag(isPlainObject(def.nodes) ? [...at, 'nodes'] : at, `block '${name}' needs 'nodes': a mapping of node id template to node`));
      continue;
    }
    blocks.set(name, { params: readBlockParams(def.params, at, src, out), nodes: def.nodes });
  }
  return blocks;
}

function readBlockParams(raw: unknown, at: Path, src: GraphSource, out: Diagnostic[]): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) {
    out.push(src.diag([...at, 'params'], `block params must be a mapping of name: default value (~ when the instance must give it), got ${typeName(raw)}`));
    return {};
  }
  for (const k of Object.keys(raw)) {
    if (k === 'name') out.push(src.diag([...at, 'params', k], `'name' is always the instance's key; it cannot be declared`, true));
    else if (!PARAM_NAME_RE.test(k)) out.push(src.diag([...at, 'params', k], `block param name '${k}' must be letters, digits and '_'`, true));
  }
  return raw;
}

function expandGroup(nodes: Record<string, unknown>, at: Path, scope: Scope, x: Expansion): void {
  for (const [key, raw] of Object.entries(nodes)) {
    const path = [...at, key];
    const id = scope.params ? String(substitute(key, scope.params)) : key;
    const node = scope.params ? substitute(raw, scope.params) : raw;
    const unknown = scope.params ? /\$\{([^}]*)\}/.exec(id) : null;
    if (unknown) {
      const declared = Object.keys(scope.params!);
      x.out.push(siteDiag(x.src, { id, path, via: scope.via }, [], `node id '${key}' names '\${${unknown[1]}}', which is not a param of block '${scope.stack[scope.stack.length - 1]}'${didYouMean(unknown[1], declared)}; its params are ${listOf(declared)}`, true));
      continue;
    }
    if (isPlainObject(node) && node.use !== undefined) expandUse(id, node, path, scope, x);
    else x.sites.push({ id, node, path, via: scope.via });
  }
}

function expandUse(name: string, node: Record<string, unknown>, path: Path, scope: Scope, x: Expansion): void {
  const here = { id: name, path, via: scope.via };
  const report = (rest: Path, message: string, key = false) => x.out.push(siteDiag(x.src, here, rest, message, key));
  for (const k of Object.keys(node)) {
    if (USE_KEYS.includes(k)) continue;
    const hint = k === 'stage' || k === 'in' ? ` (a node has either 'stage' and 'in', or 'use')` : didYouMean(k, USE_KEYS);
    report([k], `unknown key '${k}' for a block instance${hint}; expected ${listOf(USE_KEYS)}`, true);
  }
  const blockName = node.use;
  const block = typeof blockName === 'string' ? x.blocks.get(blockName) : undefined;
  if (typeof blockName !== 'string' || !block) {
    const known = [...x.blocks.keys()];
    report(['use'], typeof blockName !== 'string' ? `'use' names a block, got ${typeName(blockName)}` : `unknown block '${blockName}'${didYouMean(blockName, known)}; the blocks are ${listOf(known)}`);
    return;
  }
  if (scope.stack.includes(blockName)) {
    report(['use'], `block '${blockName}' uses itself: ${[...scope.stack.slice(scope.stack.indexOf(blockName)), blockName].join(' -> ')}`);
    return;
  }
  const given = instanceParams(node.params, report);
  const sets = foreachSets(node.foreach, report);
  if (!sets) return;
  checkParamNames(blockName, block, given, sets, path, report);
  for (const set of sets) {
    const values: Record<string, unknown> = { ...block.params, ...given.values, ...set.values, name };
    const missing = Object.keys(block.params).filter((p) => values[p] === null || values[p] === undefined);
    if (missing.length) {
      report([], `block '${blockName}' needs ${listOf(missing)}: give ${missing.length > 1 ? 'them' : 'it'} under params: (or foreach:)`, true);
      return;
    }
    if (x.sites.length > MAX_NODES) {
      report(['use'], `the expansion makes more than ${MAX_NODES} nodes`);
      return;
    }
    const paramAt = Object.fromEntries(Object.entries({ ...given.at, ...set.at }).map(([k, at]) => [k, [...path, ...at]]));
    const use: BlockUse = { block: blockName, path, paramAt };
    expandGroup(block.nodes, ['blocks', blockName, 'nodes'], { params: values, stack: [...scope.stack, blockName], via: [use, ...scope.via] }, x);
  }
}

type Report = (rest: Path, message: string, key?: boolean) => void;

function instanceParams(raw: unknown, report: Report): ParamSet {
  if (raw === undefined || raw === null) return { values: {}, at: {} };
  if (!isPlainObject(raw)) {
    report(['params'], `an instance's params must be a mapping of block param: value, got ${typeName(raw)}`);
    return { values: {}, at: {} };
  }
  return { values: raw, at: Object.fromEntries(Object.keys(raw).map((k) => [k, ['params', k]])) };
}

/** The param sets foreach makes (one empty set without foreach); undefined when it is malformed. */
function foreachSets(raw: unknown, report: Report): ParamSet[] | undefined {
  if (raw === undefined || raw === null) return [{ values: {}, at: {} }];
  const shape = `foreach is a mapping of param: [values...] (every combination) or a list of param mappings (one instance each)`;
  if (Array.isArray(raw)) {
    if (!raw.length) return report(['foreach'], `${shape}; this list is empty`), undefined;
    const bad = raw.findIndex((e) => !isPlainObject(e));
    if (bad >= 0) return report(['foreach', bad], `${shape}; entry ${bad} is ${typeName(raw[bad])}`), undefined;
    return raw.map((e: Record<string, unknown>, i) => ({ values: e, at: Object.fromEntries(Object.keys(e).map((k) => [k, ['foreach', i, k]])) }));
  }
  if (!isPlainObject(raw) || !Object.keys(raw).length) return report(['foreach'], `${shape}, got ${typeName(raw)}`), undefined;
  let sets: ParamSet[] = [{ values: {}, at: {} }];
  for (const [axis, list] of Object.entries(raw)) {
    if (!Array.isArray(list) || !list.length) return report(['foreach', axis], `foreach.${axis} must be a non-empty list of values, got ${typeName(list)}`), undefined;
    const options = list.map((v, i): ParamSet => {
      const at: Path = ['foreach', axis, i];
      if (!isPlainObject(v)) return { values: { [axis]: v }, at: { [axis]: at } };
      return { values: v, at: Object.fromEntries(Object.keys(v).map((k) => [k, [...at, k]])) };
    });
    sets = sets.flatMap((s) => options.map((o) => ({ values: { ...s.values, ...o.values }, at: { ...s.at, ...o.at } })));
    if (sets.length > MAX_COMBINATIONS) return report(['foreach'], `foreach makes more than ${MAX_COMBINATIONS} instances`), undefined;
  }
  return sets;
}

/** Every param the instance or its foreach sets must be one the block declares; each mistake once. */
function checkParamNames(blockName: string, block: Block, given: ParamSet, sets: ParamSet[], path: Path, report: Report): void {
  const declared = Object.keys(block.params);
  const seen = new Set<string>();
  for (const set of [given, ...sets]) {
    for (const [k, at] of Object.entries(set.at)) {
      if (declared.includes(k) || seen.has(k)) continue;
      seen.add(k);
      const msg = k === 'name' ? `'name' is the instance's key ('${String(path[path.length - 1])}'); it cannot be set` : `block '${blockName}' has no param '${k}'${didYouMean(k, declared)}; its params are ${listOf(declared)}`;
      report(at, msg, at[at.length - 1] === k);
    }
  }
}

/** Replaces ${p} for the block params given; other references are left for the graph params. */
function substitute(value: unknown, params: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_RE.exec(value);
    if (whole && Object.hasOwn(params, whole[1].trim())) return structuredClone(params[whole[1].trim()]);
    return value.replace(ANY_RE, (ref: string, n: string) => {
      if (!Object.hasOwn(params, n.trim())) return ref;
      const v = params[n.trim()];
      return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, params));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, params)]));
  return value;
}
