/**
 * foldRepeats / expandRepeats (src/wire/repeat.ts): a run of posted calls with one args object travels as one frame
 * with `repeat`, and comes back as the same calls.
 *
 * node --import tsx test/wire/repeat.test.ts
 */
import fc from 'fast-check';
import * as assert from 'uvu/assert';
import { test } from '../helpers/uvu.js';
import { decodeBody, encodeBody } from '../../src/wire/codec.js';
import type { CallFrame, WireValue } from '../../src/wire/frames.js';
import { expandRepeats, foldRepeats } from '../../src/wire/repeat.js';

/** Calls with consecutive seqs, drawn from a few args objects, some waiting or asking for a handle. */
const calls = fc.array(fc.record({ args: fc.nat(2), fn: fc.constantFrom('f', 'g'), async: fc.boolean(), retId: fc.option(fc.integer({ min: 1, max: 9 }), { freq: 4 }) }), { maxLength: 40 })
  .map((drawn) => {
    const shared: WireValue[][] = [[1, 2], [3, new Uint8Array([4])], []];
    return drawn.map((d, seq): CallFrame => ({ seq, fn: d.fn, args: shared[d.args]!, retId: d.retId, async: d.async }));
  });

test('expand(fold(calls)) gives the same calls, in order; fold leaves no two foldable neighbours', () => {
  fc.assert(fc.property(calls, fc.integer({ min: 1, max: 5 }), (frames, maxRepeat) => {
    const folded = foldRepeats(frames, maxRepeat);
    const back = expandRepeats(folded);
    assert.equal(back.map((f) => [f.seq, f.fn, f.args, f.retId ?? null, f.async ?? false]), frames.map((f) => [f.seq, f.fn, f.args, f.retId ?? null, f.async ?? false]));
    back.forEach((f, i) => assert.ok(f.args === frames[i]!.args, 'one args object, as posted'));
    for (const f of folded) assert.ok(f.repeat === undefined || (f.repeat >= 1 && f.repeat <= maxRepeat && f.async === true));
    assert.is(folded.length, frames.length - folded.reduce((n, f) => n + (f.repeat ?? 0), 0));
  }));
});

test('a launch loop posted with one args object goes as one frame per 1024 calls, and through the codec', () => {
  const args: WireValue[] = [4, 8, 1, null, [64], null, 0, null, null];
  const frames: CallFrame[] = Array.from({ length: 3000 }, (_, seq) => ({ seq: 100 + seq, fn: 'clEnqueueNDRangeKernel', args, retId: null, async: true }));
  const folded = foldRepeats(frames, 1023);
  assert.equal(folded.map((f) => f.repeat), [1023, 1023, 951]);
  const decoded = decodeBody(encodeBody({ t: 'batch', calls: folded }));
  assert.ok(decoded.t === 'batch');
  const back = expandRepeats(decoded.calls);
  assert.is(back.length, 3000);
  assert.equal(back.map((f) => f.seq), frames.map((f) => f.seq));
  assert.ok(back.every((f, i) => f.args === back[i - (i % 1024)]!.args), 'the calls of a decoded repeat share one args object');
});

test('different args objects, a waiting call, a handle asked for or a seq gap break a run', () => {
  const a: WireValue[] = [1];
  const f = (seq: number, extra: Partial<CallFrame> = {}): CallFrame => ({ seq, fn: 'f', args: a, retId: null, async: true, ...extra });
  assert.equal(foldRepeats([f(0), f(1, { args: [1] }), f(2, { async: false }), f(3), f(4, { retId: 7 }), f(5), f(7)], 10).map((x) => x.repeat), [undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
  const same = [f(0), f(1)];
  assert.ok(foldRepeats([f(0), f(2)], 10).length === 2 && expandRepeats(same) === same, 'nothing to fold or expand: the same array');
});

test.run();
