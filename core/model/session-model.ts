// The half of ArchitectureModel that every architecture here shares (docs/architecture.md §7):
// all weights in one ParamStore, each session's own weights named under `sessions.<key>.` and
// kept in a table by session id, and the session, trainable-scope, save, load and dispose
// methods over them. An architecture extends SessionModel with its shared weights, its
// per-session weights W (which must hold the session's spec) and its forward pass.
import type { SessionSpec } from '../payloads.ts';
import type { Rng } from '../rng.ts';
import { ParamStore } from '../tensor/params.ts';
import type * as tf from '../tensor/tf.ts';

/** Weight-name segment for a session id: '.'-free, so name prefixes never collide. */
export function sessionKey(sessionId: string): string {
  return `sessions.${encodeURIComponent(sessionId).replace(/\./g, '%2E')}`;
}

/** How the errors name a session's weights: e.g. NDT1 says "a stitcher" / "stitcher". */
export interface SessionWeightsNoun {
  /** "session s already has <has>" */
  has: string;
  /** "no <none> for session s" */
  none: string;
}

export abstract class SessionModel<W extends { spec: SessionSpec }> {
  protected readonly store: ParamStore;
  private readonly perSession = new Map<string, W>();

  constructor(
    /** The architecture's name, which starts every error message. */
    readonly architecture: string,
    weightsRng: Rng,
    private readonly noun: SessionWeightsNoun = { has: 'weights', none: 'weights' },
  ) {
    this.store = new ParamStore(weightsRng);
  }

  sessions(): SessionSpec[] {
    return [...this.perSession.values()].map((s) => s.spec);
  }

  hasSession(sessionId: string): boolean {
    return this.perSession.has(sessionId);
  }

  /** Refuses a session id that already has weights (call before creating any). */
  protected checkNewSession(spec: SessionSpec): void {
    if (this.perSession.has(spec.sessionId)) throw new Error(`${this.architecture}: session ${spec.sessionId} already has ${this.noun.has}`);
    if (!(Number.isInteger(spec.nNeurons) && spec.nNeurons > 0)) throw new Error(`${this.architecture}: session ${spec.sessionId} has ${spec.nNeurons} neurons`);
  }

  protected setSession(sessionId: string, weights: W): void {
    this.perSession.set(sessionId, weights);
  }

  /** The session's own weights; a clear error naming the known sessions otherwise. */
  protected session(sessionId: string): W {
    const s = this.perSession.get(sessionId);
    if (!s) throw new Error(`${this.architecture}: no ${this.noun.none} for session ${sessionId} (known: ${[...this.perSession.keys()].join(', ') || 'none'}); add it with addSession`);
    return s;
  }

  trainableVariables(scope: 'all' | 'sessions' | { sessionId: string } = 'all'): tf.Variable[] {
    if (scope === 'all') return this.store.trainable();
    if (scope === 'sessions') return this.store.trainable(['sessions.']);
    this.session(scope.sessionId);
    return this.store.trainable([`${sessionKey(scope.sessionId)}.`]);
  }

  weights(): tf.NamedTensorMap {
    return this.store.weights();
  }

  loadWeights(map: tf.NamedTensorMap, opts: { allowMissing?: boolean; source?: string } = {}): void {
    this.store.load(map, opts);
  }

  paramCount(): number {
    return this.store.count();
  }

  dispose(): void {
    this.store.dispose();
    this.perSession.clear();
  }
}
