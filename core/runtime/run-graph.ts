// Wires a resolved graph into RxJS streams and runs it to completion, failure or interruption.
import { EMPTY, Subject, Subscription, connectable, merge, throwError, type Connectable, type Observable } from 'rxjs';
import { catchError, tap } from 'rxjs/operators';
import type { Logger } from 'pino';
import type { ResolvedGraph, ResolvedNode } from '../graph/load.ts';
import { describeItem } from '../payloads.ts';
import { createRng, hashString } from '../rng.ts';
import type { Progress, RunDirectoryHandle, StageContext, Streams } from '../stage.ts';
import type { ArchitectureContribution } from '../architecture.ts';
import { stageKey } from '../stage.ts';
import { DemandGate, NodeProgress, pulledIterable, pulledSource, watchedNodes } from './demand.ts';

/** A failure inside a stage, tagged with where it happened and on which item. */
export class NodeError extends Error {
  constructor(
    readonly nodeId: string,
    readonly stage: string,
    readonly item: string | undefined,
    readonly cause: unknown,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(`node '${nodeId}' (${stage})${item ? ` on ${item}` : ''}: ${msg}`);
    this.name = 'NodeError';
  }
}

export interface NodeStats {
  stage: string;
  emitted: Record<string, number>;
  startedAt?: string;
  finishedAt?: string;
  lastItem?: string;
}

export interface RunOutcome {
  status: 'completed' | 'failed' | 'interrupted';
  error?: NodeError;
  nodes: Record<string, NodeStats>;
}

export interface RunGraphOptions {
  graph: ResolvedGraph;
  run: RunDirectoryHandle;
  logger: Logger;
  progress: (label: string, total: number) => Progress;
  /** Aborted on SIGINT: sources stop pulling and the graph drains. */
  signal: AbortSignal;
  /** How many items a source may run ahead of the streaming nodes below it. */
  maxInFlight?: number;
  /** Architectures registered by the plugins, handed to every stage. */
  architectures?: ReadonlyMap<string, ArchitectureContribution>;
}

/** Per-run bookkeeping shared by the wiring and the run: counters, stats and the wired streams. */
interface RunState {
  counts: NodeProgress;
  stats: Record<string, NodeStats>;
  lastItem: Map<string, string>;
  outputs: Map<string, Record<string, Connectable<unknown>>>;
  ordered: Connectable<unknown>[];
}

export async function runGraph(opts: RunGraphOptions): Promise<RunOutcome> {
  const window = opts.maxInFlight ?? 2;
  const state: RunState = { counts: new NodeProgress(), stats: {}, lastItem: new Map(), outputs: new Map(), ordered: [] };
  for (const node of opts.graph.nodes) {
    const error = wireNode(node, opts, state, window);
    if (error) return { status: 'failed', error, nodes: state.stats };
    opts.logger.debug({ node: node.id, stage: stageKey(node.stage) }, 'node wired');
  }
  return runWired(opts.graph, opts.signal, state);
}

/** Builds one node's inputs from its upstream outputs, creates the stage and wraps its output ports; returns the failure, if any. */
function wireNode(node: ResolvedNode, opts: RunGraphOptions, state: RunState, window: number): NodeError | undefined {
  const key = stageKey(node.stage);
  const st: NodeStats = { stage: key, emitted: {} };
  state.stats[node.id] = st;
  const inputs = nodeInputs(node, st, state);
  const ctx = nodeContext(node, opts, state.counts, window);
  let outs: Streams;
  try {
    outs = node.stage.create(node.params, ctx)(inputs);
  } catch (err) {
    return new NodeError(node.id, key, undefined, err);
  }
  const declared = Object.keys(node.stage.outputs);
  const missing = declared.filter((p) => !outs[p]);
  if (missing.length) {
    const err = new Error(`stage returned no stream for output port(s) ${missing.join(', ')}`);
    return new NodeError(node.id, key, undefined, err);
  }
  const mine: Record<string, Connectable<unknown>> = {};
  for (const port of declared) {
    const c = wrapOutput(node, key, port, outs[port] as Observable<unknown>, st, state);
    mine[port] = c;
    state.ordered.push(c);
  }
  state.outputs.set(node.id, mine);
  return undefined;
}

/** Merges each input port's upstream streams, noting when the node first sees an item and which item it saw last. */
function nodeInputs(node: ResolvedNode, st: NodeStats, state: RunState): Streams {
  const inputs: Streams = {};
  for (const port of Object.keys(node.stage.inputs)) {
    const edges = node.inputs[port] ?? [];
    const upstream: Observable<unknown>[] = edges.map((e) => state.outputs.get(e.node)![e.port]);
    const stream = upstream.length === 0 ? EMPTY : upstream.length === 1 ? upstream[0] : merge(...upstream);
    inputs[port] = stream.pipe(
      tap((x) => {
        st.startedAt ??= new Date().toISOString();
        state.lastItem.set(node.id, describeItem(x));
      }),
    );
  }
  return inputs;
}

/** Counts one output port's emissions, tags its errors with the node, and makes it connectable. */
function wrapOutput(
  node: ResolvedNode,
  key: string,
  port: string,
  out: Observable<unknown>,
  st: NodeStats,
  state: RunState,
): Connectable<unknown> {
  st.emitted[port] = 0;
  const wrapped = out.pipe(
    tap({
      next: () => {
        st.emitted[port]++;
        state.counts.emit(node.id, port);
      },
    }),
    catchError((err) => throwError(() => (err instanceof NodeError ? err : new NodeError(node.id, key, state.lastItem.get(node.id), err)))),
  );
  return connectable(wrapped, { connector: () => new Subject<unknown>(), resetOnDisconnect: false });
}

/** Subscribes to every wired output, then connects them upstream-last, and resolves on the first failure or when all complete. */
function runWired(graph: ResolvedGraph, signal: AbortSignal, state: RunState): Promise<RunOutcome> {
  const { counts, stats, lastItem, outputs, ordered } = state;
  return new Promise<RunOutcome>((resolve) => {
    const subs = new Subscription();
    let settled = false;
    const finish = (outcome: RunOutcome) => {
      if (settled) return;
      settled = true;
      subs.unsubscribe();
      for (const g of counts.gates) g.close();
      for (const [id, item] of lastItem) stats[id].lastItem = item;
      resolve(outcome);
    };
    // Count completions per node: a node is done when all its output ports completed.
    const openPorts = new Map(graph.nodes.map((n) => [n.id, Object.keys(n.stage.outputs).length]));
    let remaining = ordered.length;
    for (const node of graph.nodes) {
      for (const [, c] of Object.entries(outputs.get(node.id)!)) {
        subs.add(
          c.subscribe({
            error: (err: unknown) => {
              const e = err instanceof NodeError ? err : new NodeError(node.id, stageKey(node.stage), lastItem.get(node.id), err);
              finish({ status: 'failed', error: e, nodes: stats });
            },
            complete: () => {
              const left = openPorts.get(node.id)! - 1;
              openPorts.set(node.id, left);
              if (left === 0) {
                stats[node.id].finishedAt = new Date().toISOString();
                counts.complete(node.id);
              }
              if (--remaining === 0) finish({ status: signal.aborted ? 'interrupted' : 'completed', nodes: stats });
            },
          }),
        );
      }
    }
    if (ordered.length === 0) finish({ status: 'completed', nodes: stats });
    // Downstream subscribers are all attached above; start upstream last so nothing is missed.
    for (const c of [...ordered].reverse()) {
      if (settled) break;
      subs.add(c.connect());
    }
  });
}

function nodeContext(node: ResolvedNode, opts: RunGraphOptions, counts: NodeProgress, window: number): StageContext {
  const key = stageKey(node.stage);
  const seed = (hashString(node.id, opts.graph.seed) ^ opts.graph.seed) >>> 0;
  let gate: DemandGate | undefined;
  return {
    nodeId: node.id,
    seed,
    logger: opts.logger.child({ node: node.id, stage: key }),
    rng: createRng(seed),
    run: opts.run,
    signal: opts.signal,
    progress: (label, total) => opts.progress(`${node.id}: ${label}`, total),
    source<T>(items: AsyncIterable<T> | Iterable<T>): Observable<T> {
      if (!gate) {
        gate = new DemandGate(window, watchedNodes(opts.graph, node.id), counts);
        counts.gates.push(gate);
      }
      return pulledSource(items, gate, opts.signal);
    },
    pull: <T>(stream: Observable<T>) => pulledIterable(stream, () => counts.take(node.id)),
    architectures: opts.architectures ?? new Map(),
    connectedInputs: new Set(Object.entries(node.inputs).filter(([, edges]) => edges.length > 0).map(([port]) => port)),
  };
}
