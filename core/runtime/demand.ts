// Back-pressure for sources: a source pulls its next item only when the streaming nodes below it
// have kept up, so a slow stage never makes memory grow (docs/architecture.md §4.4).
//
// Rule: a source may be at most `window` items ahead of every node downstream of it, where a
// node's progress is the larger of the items it has taken through `ctx.pull` and the items it
// has emitted on its busiest output port (it is done once it completes). Not their sum: a body
// that takes an item and sends one value per port for it has made one item of progress. Nodes that collect this source's whole stream (a
// `collect` input), and everything below them, are not watched: they cannot keep pace by
// design, and waiting on them would deadlock.
import { Observable } from 'rxjs';
import type { ResolvedGraph } from '../graph/load.ts';

export class DemandGate {
  emitted = 0;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly window: number,
    private readonly watched: string[],
    private readonly progress: NodeProgress,
  ) {}

  private open(): boolean {
    if (this.closed || this.watched.length === 0) return true;
    let slowest = Infinity;
    for (const id of this.watched) slowest = Math.min(slowest, this.progress.done.has(id) ? Infinity : this.progress.of(id));
    return this.emitted - slowest < this.window;
  }

  /** Resolves once the source may pull another item. */
  ready(): Promise<void> {
    if (this.open()) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  /** Called whenever a watched node emits or completes. */
  check(): void {
    if (!this.waiters.length || !this.open()) return;
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Releases any waiter for good (teardown). */
  close(): void {
    this.closed = true;
    this.check();
  }
}

/** Progress per node (items taken, items emitted per port), shared by every gate of a run. */
export class NodeProgress {
  private readonly taken = new Map<string, number>();
  private readonly emitted = new Map<string, Map<string, number>>();
  readonly done = new Set<string>();
  readonly gates: DemandGate[] = [];

  /** How far the node has got: see the file comment. */
  of(id: string): number {
    return Math.max(this.taken.get(id) ?? 0, ...(this.emitted.get(id)?.values() ?? []));
  }

  emit(id: string, port: string): void {
    let ports = this.emitted.get(id);
    if (!ports) this.emitted.set(id, (ports = new Map()));
    ports.set(port, (ports.get(port) ?? 0) + 1);
    for (const g of this.gates) g.check();
  }

  take(id: string): void {
    this.taken.set(id, (this.taken.get(id) ?? 0) + 1);
    for (const g of this.gates) g.check();
  }

  complete(id: string): void {
    this.done.add(id);
    for (const g of this.gates) g.check();
  }
}

/** Streaming nodes downstream of `sourceId` whose pace the source should follow. */
export function watchedNodes(graph: ResolvedGraph, sourceId: string): string[] {
  const consumers = (id: string) => graph.nodes.filter((n) => Object.values(n.inputs).some((edges) => edges.some((e) => e.node === id)));
  const closure = (start: string[]) => {
    const seen = new Set<string>(start);
    const queue = [...start];
    while (queue.length) for (const n of consumers(queue.shift()!)) if (!seen.has(n.id)) (seen.add(n.id), queue.push(n.id));
    return seen;
  };
  const below = closure([sourceId]);
  // A node that collects a stream this source feeds cannot emit before the source ends; neither
  // can anything below it. Waiting on those nodes would deadlock, so they are not watched.
  const collectors = graph.nodes
    .filter((n) => Object.entries(n.inputs).some(([port, edges]) => n.stage.inputs[port]?.collect && edges.some((e) => below.has(e.node))))
    .map((n) => n.id);
  const blocked = closure(collectors);
  const watched = new Set<string>();
  const queue = [sourceId];
  while (queue.length) {
    const u = queue.shift()!;
    for (const n of graph.nodes) {
      if (watched.has(n.id) || blocked.has(n.id)) continue;
      const fed = Object.entries(n.inputs).some(([port, edges]) => !n.stage.inputs[port]?.collect && edges.some((e) => e.node === u));
      if (!fed) continue;
      watched.add(n.id);
      queue.push(n.id);
    }
  }
  return [...watched].filter((id) => Object.keys(graph.nodes.find((n) => n.id === id)!.stage.outputs).length > 0);
}

/**
 * Consumes a stream item by item as an async iterable. Each item handed out counts as progress
 * of `nodeId`, so sources upstream are pulled exactly as fast as this loop takes items.
 */
export function pulledIterable<T>(stream: Observable<T>, onTake: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const queue: T[] = [];
      let done = false;
      let failure: { err: unknown } | undefined;
      let wake: (() => void) | undefined;
      const sub = stream.subscribe({
        next: (v) => {
          queue.push(v);
          wake?.();
        },
        error: (err) => {
          failure = { err };
          wake?.();
        },
        complete: () => {
          done = true;
          wake?.();
        },
      });
      return {
        async next(): Promise<IteratorResult<T>> {
          while (!queue.length && !done && !failure) await new Promise<void>((r) => (wake = r));
          wake = undefined;
          if (queue.length) {
            onTake();
            return { value: queue.shift()!, done: false };
          }
          if (failure) throw failure.err;
          return { value: undefined, done: true };
        },
        async return(): Promise<IteratorResult<T>> {
          sub.unsubscribe();
          queue.length = 0;
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** An Observable over an (async) iterable that pulls one item at a time through a gate. */
export function pulledSource<T>(items: AsyncIterable<T> | Iterable<T>, gate: DemandGate, signal: AbortSignal): Observable<T> {
  return new Observable<T>((sub) => {
    const it: AsyncIterator<T> | Iterator<T> =
      Symbol.asyncIterator in Object(items) ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
    let stopped = false;
    (async () => {
      try {
        for (;;) {
          await gate.ready();
          if (stopped) return;
          if (signal.aborted) break; // SIGINT: finish what is in flight, pull nothing new
          const r = await it.next();
          if (stopped) return;
          if (r.done) break;
          gate.emitted++;
          sub.next(r.value);
        }
        sub.complete();
      } catch (err) {
        if (!stopped) sub.error(err);
      }
    })();
    return () => {
      stopped = true;
      gate.close();
      void Promise.resolve(it.return?.()).catch(() => {});
    };
  });
}
