// What every bundled architecture promises through the contract (core/architecture.ts), checked
// the same way for each: capabilities follow the config, switches name boolean config fields.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArchitectureContribution } from '../core/architecture.ts';
import { ndt1Architecture } from '../plugins/ndt1/architecture.ts';
import { ndt2Architecture } from '../plugins/ndt2/architecture.ts';

const ARCHITECTURES: ArchitectureContribution[] = [ndt1Architecture, ndt2Architecture];
const sessions = [{ sessionId: 's', nNeurons: 3, nBins: 6 }];

for (const arch of ARCHITECTURES) {
  test(`${arch.name}: capabilities follow the config (tokens; maxBins raised to the longest session)`, () => {
    const a = arch.build({ promptTokens: false, sessionTokens: true, maxBins: 4 }, { sessions, seed: 1 });
    assert.equal(a.capabilities, { promptTokens: false, sessionTokens: true, maxBins: 6 });
    const b = arch.build({}, { sessions, seed: 1 });
    assert.equal(b.capabilities, { promptTokens: true, sessionTokens: false, maxBins: 100 });
    a.dispose();
    b.dispose();
  });

  test(`${arch.name}: switches name boolean fields of the config schema`, () => {
    const defaults: Record<string, unknown> = arch.configSchema.parse({});
    assert.equal(Object.keys(arch.switches ?? {}).sort(), ['promptTokens', 'sessionTokens']);
    for (const f of Object.values(arch.switches ?? {})) assert.is(typeof defaults[f as string], 'boolean', String(f));
  });
}

test.run();
