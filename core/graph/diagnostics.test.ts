import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { didYouMean, editDistance, formatDiagnostic, pathString } from './diagnostics.ts';

test('edit distance counts insertions, deletions and substitutions', () => {
  assert.is(editDistance('binSizeMs', 'binSizeMs'), 0);
  assert.is(editDistance('binSizMs', 'binSizeMs'), 1);
  assert.is(editDistance('kitten', 'sitting'), 3);
});

test('did-you-mean suggests close names only', () => {
  assert.is(didYouMean('spike-bining', ['spike-binning', 'simulate']), " (did you mean 'spike-binning'?)");
  assert.is(didYouMean('zzzzzz', ['spike-binning', 'simulate']), '');
});

test('diagnostics print as file:line:col  path  message', () => {
  assert.is(
    formatDiagnostic({ file: 'g.yaml', line: 3, col: 7, path: pathString(['nodes', 'a', 'params', 'x']), message: 'bad' }),
    'g.yaml:3:7  nodes.a.params.x  bad',
  );
  assert.is(pathString(['nodes', 'a', 'in', 'x', 1]), 'nodes.a.in.x[1]');
});

test.run();
