// Back-pressure for sources: a source pulls its next item only when the streaming nodes below it
// have kept up, so a slow stage never makes memory grow (DESIGN.md example 9).
//
// Rule: a source may be at most `window` items ahead of every node downstream of it, where a
// node's progress is the number of items it has emitted (it is done once it completes). Nodes
// that wait for an aggregate (a `collect` input, or anything fed by one) are not watched: they
// cannot keep pace by design, and waiting on them would deadlock.
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
    for (const id of this.watched) slowest = Math.min(slowest, this.progress.done.has(id) ? Infinity : this.progress.emitted.get(id) ?? 0);
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

/** Emission counts per node, shared by every gate of a run. */
export class NodeProgress {
  readonly emitted = new Map<string, number>();
  readonly done = new Set<string>();
  readonly gates: DemandGate[] = [];

  emit(id: string): void {
    this.emitted.set(id, (this.emitted.get(id) ?? 0) + 1);
    for (const g of this.gates) g.check();
  }

  complete(id: string): void {
    this.done.add(id);
    for (const g of this.gates) g.check();
  }
}

/** Streaming nodes downstream of `sourceId` whose pace the source should follow. */
export function watchedNodes(graph: ResolvedGraph, sourceId: string): string[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  // A node waits on an aggregate if one of its ports collects, or an upstream node does.
  const aggregate = new Set<string>();
  for (const n of graph.nodes) {
    const collects = Object.entries(n.inputs).some(([port, edges]) => edges.length > 0 && n.stage.inputs[port]?.collect);
    const fedByAggregate = Object.values(n.inputs).some((edges) => edges.some((e) => aggregate.has(e.node)));
    if (collects || fedByAggregate) aggregate.add(n.id);
  }
  const seen = new Set<string>();
  const queue = [sourceId];
  while (queue.length) {
    const u = queue.shift()!;
    for (const n of graph.nodes) {
      if (seen.has(n.id) || aggregate.has(n.id)) continue;
      const fed = Object.values(n.inputs).some((edges) => edges.some((e) => e.node === u));
      if (!fed) continue;
      seen.add(n.id);
      queue.push(n.id);
    }
  }
  return [...seen].filter((id) => Object.keys(byId.get(id)!.stage.outputs).length > 0);
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
