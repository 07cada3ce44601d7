// Labels each neuron with its Allen, Beryl and Cosmos region from its Allen CCF id (docs/method.md §2.3).
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import { DEFAULT_ATLAS_DIR, loadAllenRegions, UNKNOWN, UNLOCATED, VOID } from '../core/atlas/regions.ts';
import { labelNeurons } from '../core/atlas/label.ts';

export const regionLabelling = defineStage({
  id: 'region-labelling',
  version: 1,
  summary: `Sets each neuron's acronym (Allen, Beryl or Cosmos level) and its Beryl and Cosmos regions; '${UNLOCATED}' for units with no location, '${VOID}' for id 0, '${UNKNOWN}' for ids not in the atlas`,
  spec: 'docs/method.md §2.3',
  inputs: { sessions: { type: 'binned-session', description: 'binned sessions whose neurons carry an Allen CCF id (atlasId)' } },
  outputs: { sessions: { type: 'binned-session', description: 'the same sessions with acronym, beryl and cosmos filled' } },
  params: z.object({
    level: z.enum(['allen', 'beryl', 'cosmos']).default('allen').describe("which mapping goes into each neuron's acronym (the regions masking and evaluation use); beryl and cosmos are always filled"),
    atlasDir: z.string().default('').describe('folder holding allen_structure_tree.csv and mappings.pqt; empty uses the copy shipped in core/atlas/data'),
  }),
  create(p, ctx) {
    return {
      async map(s) {
        const regions = await loadAllenRegions(p.atlasDir || DEFAULT_ATLAS_DIR);
        const { neurons, counts } = labelNeurons(s.neurons, regions, p.level);
        const log = ctx.logger.child({ session: s.sessionId });
        if (counts.unknown) {
          log.warn({ ids: counts.unknownIds.slice(0, 20) }, `${counts.unknown} neuron(s) have Allen ids missing from the atlas: labelled '${UNKNOWN}'`);
        }
        const byRegion: Record<string, number> = {};
        for (const n of neurons) byRegion[n.acronym] = (byRegion[n.acronym] ?? 0) + 1;
        log.info({ atlasLevel: p.level, regions: byRegion, void: counts.void, unlocated: counts.unlocated }, 'labelled');
        ctx.run.metric(ctx.nodeId, { sessionId: s.sessionId, level: p.level, ok: counts.ok, void: counts.void, unknown: counts.unknown, unlocated: counts.unlocated });
        return { ...s, neurons };
      },
    };
  },
});
