// The one interface every model architecture implements (NDT1, NDT2, or a third-party plugin).
// The masking sampler never sees it: masking acts on the data (SPEC.md §3).

export interface ArchitectureContribution {
  /** Name used by the model stage's `architecture` param (e.g. 'ndt1'). */
  name: string;
  summary: string;
  /** How the model cuts (time x neurons) into tokens, for docs and `mtm stages`. */
  tokenLayout: string;
  /**
   * Builds a model from its config. The model path (issue 4) refines this type; it stays
   * `unknown` here so the core does not depend on a tensor library.
   */
  build(config: Record<string, unknown>): unknown;
}
