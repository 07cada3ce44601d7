import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { reportMarkdown } from './markdown.ts';
import { summarise } from './summary.ts';
import type { Metrics } from '../payloads.ts';

const m = (sessionId: string, label: string, values: Record<string, number>): Metrics => ({ kind: 'metrics', sessionId, label, values });
const md = (items: Metrics[]) => reportMarkdown({ title: 't', summary: summarise(items), backend: 'cpu', plots: [], notes: [] });

test('behaviour decoding: a table when decoded, one line when no model decoded anything', () => {
  const decoded = md([m('s1', 'mtm', { co_smoothing_bps: 0.1, choice_accuracy: 0.8, choice_chance: 0.5 }), m('s1', 'temporal', { co_smoothing_bps: 0.05, choice_accuracy: 0.7, choice_chance: 0.5 })]);
  assert.match(decoded, '| choice accuracy | 0.800 | 0.700 | 0.500 |');
  assert.not.match(decoded, 'No behaviour was decoded');
  const none = md([m('s1', 'mtm', { co_smoothing_bps: 0.1 }), m('s1', 'temporal', { co_smoothing_bps: 0.05 })]);
  assert.match(none, '## Behaviour decoding\n\nNo behaviour was decoded in this run.');
  assert.not.match(none, 'choice accuracy |');
  assert.match(none, '| co-smoothing | 0.100 | 0.050 |');
});

test('spread table: quantiles beside the mean per task and model; a "not scored" column only when a task skipped units', () => {
  const q = (t: string, v: number[]) => Object.fromEntries(['q10', 'q25', 'q50', 'q75', 'q90'].map((k, i) => [`${t}_bps_${k}`, v[i]]));
  const items = [
    m('s1', 'mtm', { co_smoothing_bps: 0.1, co_smoothing_evaluated: 284, co_smoothing_silent: 216, co_smoothing_unscored: 0, ...q('co_smoothing', [-0.1, 0, 0.05, 0.1, 0.2]) }),
    m('s1', 'temporal', { co_smoothing_bps: -15.96, co_smoothing_evaluated: 284, co_smoothing_silent: 216, co_smoothing_unscored: 0, ...q('co_smoothing', [-43.07, -6.17, -0.48, -0.06, 0.03]) }),
  ];
  const out = md(items);
  assert.match(out, '| task | model | units scored | excluded: no test spikes | mean | 10 % | 25 % | median | 75 % | 90 % |');
  assert.match(out, '| co-smoothing | temporal | 284 | 216 | -15.960 | -43.070 | -6.170 | -0.480 | -0.060 | 0.030 |');
  assert.match(out, '| co-smoothing | mtm | 284 | 216 | 0.100 | -0.100 | 0.000 | 0.050 | 0.100 | 0.200 |');
  assert.match(out, /Co-smoothing bits\/spike \(per-neuron median\): mtm is better than temporal by 0\.530/);
  assert.not.match(out, 'not scored by the task');
  const subset = md([m('s1', 'mtm', { co_smoothing_bps: 0.1, co_smoothing_evaluated: 4, co_smoothing_silent: 1, co_smoothing_unscored: 5, ...q('co_smoothing', [0, 0, 0, 0, 0]) })]);
  assert.match(subset, '| task | model | units scored | excluded: no test spikes | not scored by the task | mean |');
  assert.match(subset, '| co-smoothing | mtm | 4 | 1 | 5 | 0.100 |');
});

test.run();
