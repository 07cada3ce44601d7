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

test.run();
