// The config fields every transformer architecture here shares (NDT1, NDT2), with one default
// and one description each, so the two cannot drift apart (docs/method.md §4). Architectures
// spread them into their own zod schema around their own fields.
import { z } from 'zod';

/** Encoder sizes and dropout. */
export const encoderConfigFields = {
  dModel: z.number().int().min(1).default(64).describe('token width D (reference: 512)'),
  layers: z.number().int().min(1).default(2).describe('encoder layers (reference: 5)'),
  heads: z.number().int().min(1).default(4).describe('attention heads; must divide dModel (reference: 8)'),
  mlpDim: z.number().int().min(1).default(128).describe("hidden width of each layer's GELU MLP (reference: 1024)"),
  dropout: z.number().min(0).max(1).default(0.2).describe('dropout after attention and in the MLP (reference: 0.4)'),
  attentionDropout: z.number().min(0).max(1).default(0).describe('dropout on attention weights'),
  embedDropout: z.number().min(0).max(1).default(0.2).describe('dropout on the token sequence after embedding (reference: 0.4)'),
};

/** The token switches (ArchitectureContribution.switches names them). */
export const tokenConfigFields = {
  promptTokens: z.boolean().default(true).describe("prepend a learned prompt token for the batch's MtM mode (neuron, causal, inter-region, intra-region; none for temporal); turn off for a temporal-only baseline"),
  sessionTokens: z.boolean().default(false).describe('prepend a learned token per session (multi-session models)'),
};

/** Switches for an architecture whose schema spreads tokenConfigFields. */
export const TOKEN_SWITCHES = { promptTokens: 'promptTokens', sessionTokens: 'sessionTokens' } as const;
