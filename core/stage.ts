// The stage contract: one typed descriptor per stage file (docs/architecture.md §4.1).
import type { Observable, OperatorFunction } from 'rxjs';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { PayloadType } from './payloads.ts';
import type { Rng } from './rng.ts';
import type { ArchitectureContribution } from './architecture.ts';

export interface PortSpec {
  type: PayloadType;
  description: string;
  /**
   * The stage needs the whole stream on this port before it can emit (e.g. training on every
   * session). Upstream sources are then not held back waiting for this node to emit.
   */
  collect?: boolean;
  /** The node may leave this input unconnected. */
  optional?: boolean;
}

/** Progress of one long job; a no-op when stderr is not a terminal. */
export interface Progress {
  increment(by?: number, note?: string): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface RunDirectoryHandle {
  /** Root folder of this run. */
  root: string;
  /** A folder for this node's files (created on first call). */
  artifactDir(nodeId: string): string;
  /** Appends one JSON line to metrics.jsonl, tagged with the node id and time. */
  metric(nodeId: string, record: Record<string, unknown>): void;
  /** Names a result worth pointing the user to (e.g. a report); `mtm run` prints each at the end. */
  announce?(nodeId: string, label: string, path: string): void;
}

/** What a stage receives besides its params. Unit tests build one with `testContext()`. */
export interface StageContext {
  nodeId: string;
  logger: Logger;
  /** Seeded from the graph seed and the node id: reproducible, different per node. */
  rng: Rng;
  seed: number;
  run: RunDirectoryHandle;
  /** Aborted on SIGINT: finish the current item, then stop. */
  signal: AbortSignal;
  progress(label: string, total: number): Progress;
  /**
   * Turns an async iterable into this node's source stream, pulled on demand so a slow
   * consumer never makes memory grow. Sources must use this rather than `from()`.
   */
  source<T>(items: AsyncIterable<T> | Iterable<T>): Observable<T>;
  /**
   * Consumes an input stream item by item (`for await (const b of ctx.pull(inputs.train))`).
   * Each item taken counts as this node's progress, so upstream sources are pulled exactly as
   * fast as the loop goes: use it in stages that loop over items without emitting per item.
   */
  pull<T>(stream: Observable<T>): AsyncIterable<T>;
  /** Input ports wired to something in the graph (an unconnected optional port gets an empty stream). */
  connectedInputs: ReadonlySet<string>;
  /** Model architectures the plugins registered, by name (e.g. 'ndt1'). */
  architectures: ReadonlyMap<string, ArchitectureContribution>;
}

export type Streams = Record<string, Observable<any>>;

/** A stage at run time: named input streams in, named output streams out. */
export type StageOperator = (inputs: Streams) => Streams;

// A ZodObject whose fields all carry defaults and descriptions (checked by the registry).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ParamsSchema = z.ZodObject<any>;

export interface StageDescriptor<P extends ParamsSchema = ParamsSchema> {
  /** kebab-case id; the file stages/<id>.ts defines it. */
  id: string;
  /** Integer version, pinned in graph files as `<id>@<version>`. */
  version: number;
  /** One line: what the stage does. */
  summary: string;
  /** The docs/ section that specifies the method (e.g. "docs/method.md §2.4"); `mtm stages` prints it. */
  spec?: string;
  inputs: Record<string, PortSpec>;
  outputs: Record<string, PortSpec>;
  params: P;
  create(params: z.output<P>, ctx: StageContext): StageOperator;
}

/** Identity helper that keeps the params type flowing into `create`. */
export function defineStage<P extends ParamsSchema>(d: StageDescriptor<P>): StageDescriptor<P> {
  return d;
}

/**
 * The common case: one input port, one output port, one RxJS operator between them.
 * `perItem` stages must emit at least one output for each input (back-pressure counts on it).
 */
export function pipePorts(inPort: string, outPort: string, op: OperatorFunction<any, any>): StageOperator {
  return (inputs) => ({ [outPort]: inputs[inPort].pipe(op) });
}

export function stageKey(d: { id: string; version: number }): string {
  return `${d.id}@${d.version}`;
}
