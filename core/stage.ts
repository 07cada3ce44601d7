// The stage contract: one typed descriptor per stage file (docs/architecture.md §4.1), whose
// `create` returns a body of plain functions that the runtime adapts into streams (§4.4).
import type { Observable, OperatorFunction } from 'rxjs';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { PayloadOf, PayloadType } from './payloads.ts';
import type { Rng } from './rng.ts';
import type { ArchitectureContribution } from './architecture.ts';
import { bodyOperator } from './runtime/bodies.ts';

export interface PortSpec {
  type: PayloadType;
  description: string;
  /**
   * The stage needs the whole stream on this port before it can start: the runtime collects it
   * and hands the body an array. Upstream sources are then not held back waiting for this node.
   */
  collect?: boolean;
  /** The node may leave this input unconnected (the body then sees an empty stream). */
  optional?: boolean;
}

/** A stage's input or output ports, by name. */
export type Ports = Record<string, PortSpec>;

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
   * Operator stages only (bodies get this for free): turns an async iterable into this node's
   * source stream, pulled on demand so a slow consumer never makes memory grow.
   */
  source<T>(items: AsyncIterable<T> | Iterable<T>): Observable<T>;
  /**
   * Operator stages only (bodies get this for free): consumes an input stream item by item, each
   * item taken counting as this node's progress, so upstream sources follow the loop's pace.
   */
  pull<T>(stream: Observable<T>): AsyncIterable<T>;
  /** Input ports wired to something in the graph (an unconnected optional port gets an empty stream). */
  connectedInputs: ReadonlySet<string>;
  /** Model architectures the plugins registered, by name (e.g. 'ndt1'). */
  architectures: ReadonlyMap<string, ArchitectureContribution>;
}

/** The value a port carries, from its declared payload type (core/payloads.ts `PayloadMap`). */
export type PortValue<S extends PortSpec> = PayloadOf<S['type']>;

/**
 * What a body receives on its inputs: a `collect: true` port as an array of the whole stream, any
 * other port as an async iterable taken item by item (each item taken is progress, so the
 * sources above follow the body's pace). An unconnected optional port is empty.
 */
export type StageInputs<I extends Ports> = {
  [K in keyof I]: I[K] extends { collect: true } ? PortValue<I[K]>[] : AsyncIterable<PortValue<I[K]>>;
};

/**
 * Sends one value on an output port. On the first declared output port it resolves when the
 * runtime wants the next value (like `yield`, so downstream back-pressure reaches the body); on
 * the others it resolves at once (their values are kept until every consumer has them). It
 * rejects once the run no longer wants output: let that propagate.
 */
export type Send<O extends Ports> = <K extends keyof O & string>(port: K, value: PortValue<O[K]>) => Promise<void>;

/** A per-item stage: one streaming input, one output, exactly one output value per input item. */
export interface MapBody<I extends Ports, O extends Ports> {
  map(item: PortValue<I[keyof I]>): PortValue<O[keyof O]> | Promise<PortValue<O[keyof O]>>;
}

/** A stage with one output port whose values an async generator yields, pulled one at a time. */
export interface GenerateBody<I extends Ports, O extends Ports> {
  generate(inputs: StageInputs<I>): AsyncIterable<PortValue<O[keyof O]>>;
}

/** Any stage, several outputs included: `await send(port, value)`; resolving ends every output. */
export interface RunBody<I extends Ports, O extends Ports> {
  run(inputs: StageInputs<I>, send: Send<O>): Promise<void>;
}

/** Named input streams in (every declared port; an unconnected one is empty), named output streams out. */
export type StageOperator<I extends Ports = Ports, O extends Ports = Ports> = (inputs: StreamsOf<I>) => StreamsOf<O>;
export type StreamsOf<P extends Ports> = { [K in keyof P]: Observable<PortValue<P[K]>> };
/** Named streams as the runtime and unit tests wire them, before a stage's port types are known. */
export type Streams = Record<string, Observable<any>>;

/**
 * What `create` returns: one of the three bodies, or, as the escape hatch for a stage that must
 * work on the streams themselves, an RxJS operator over the named streams (docs/architecture.md §4.4).
 */
export type StageBody<I extends Ports, O extends Ports> = MapBody<I, O> | GenerateBody<I, O> | RunBody<I, O> | StageOperator<I, O>;

// A ZodObject whose fields all carry defaults and descriptions (checked by the registry).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ParamsSchema = z.ZodObject<any>;

interface StageInfo<P extends ParamsSchema, I, O> {
  /** kebab-case id; the file stages/<id>.ts defines it. */
  id: string;
  /** Integer version, pinned in graph files as `<id>@<version>`. */
  version: number;
  /** One line: what the stage does. */
  summary: string;
  /** The docs/ section that specifies the method (e.g. "docs/method.md §2.4"); `mtm stages` prints it. */
  spec?: string;
  inputs: I;
  outputs: O;
  params: P;
}

/** What a stage file writes: `create` returns the body (checks that can fail belong before the return). */
export interface StageDefinition<P extends ParamsSchema, I extends Ports, O extends Ports> extends StageInfo<P, I, O> {
  create(params: z.output<P>, ctx: StageContext): StageBody<NoInfer<I>, NoInfer<O>>;
}

/** Every field of a port spec readable on each declared port (`collect` reads undefined where not set). */
type Declared<P extends Ports> = { [K in keyof P]: P[K] & PortSpec };

/**
 * What the runtime and the registry see: `create` returns the operator the body was adapted
 * into; it takes any subset of the input streams (an absent one is empty), as unit tests pass them.
 */
export interface StageDescriptor<P extends ParamsSchema = ParamsSchema, I extends Ports = Ports, O extends Ports = Ports> extends StageInfo<P, Declared<I>, Declared<O>> {
  create(params: z.output<P>, ctx: StageContext): (inputs: Partial<StreamsOf<I>>) => StreamsOf<O>;
}

/** Types the body from the port declarations and adapts it into the runtime's operator. */
export function defineStage<P extends ParamsSchema, I extends Ports, O extends Ports>(d: StageDefinition<P, I, O>): StageDescriptor<P, I, O> {
  return { ...d, create: (params, ctx) => bodyOperator(d, d.create(params, ctx), ctx) as (inputs: Partial<StreamsOf<I>>) => StreamsOf<O> };
}

/**
 * For operator stages: one input port, one output port, one RxJS operator between them. The
 * operator must emit at least one output for each input (back-pressure counts on it).
 */
export function pipePorts<In extends string, Out extends string>(inPort: In, outPort: Out, op: OperatorFunction<any, any>): (inputs: Record<In, Observable<any>>) => Record<Out, Observable<any>> {
  return (inputs) => ({ [outPort]: inputs[inPort].pipe(op) }) as Record<Out, Observable<any>>;
}

export function stageKey(d: { id: string; version: number }): string {
  return `${d.id}@${d.version}`;
}
