// Test helper for the fused-kernel tests: fused output against the plain path's.
import * as assert from 'uvu/assert';

/** Asserts max |actual - expected| <= atol + rtol * max|expected|, naming the first entry that is not. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * maxRef)) assert.unreachable(`${what}[${i}]: fused ${actual[i]} vs plain ${expected[i]} (|diff| ${err}, max ${maxRef})`);
  }
}
