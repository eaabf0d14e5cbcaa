/** reclaimBefore: the memory of a buffer nothing references any more is freed before a large allocation, and only then. */
import * as assert from 'uvu/assert';
import { allowReclaim, reclaimBefore, RECLAIM_MIN_BYTES } from '../../src/wire/reclaim.js';
import { test } from '../helpers/uvu.js';

allowReclaim();

/** Bytes of a buffer made and dropped: more than the threshold, less than makes V8 collect by itself. */
const SIZE = RECLAIM_MIN_BYTES + (4 << 20);

/** Makes a buffer of SIZE (touched, so its pages are real) and drops it; returns what buffers hold then. */
function dropOne(): number {
  const b = Buffer.alloc(SIZE, 1);
  if (b[SIZE - 1] !== 1) throw new Error('unreachable');
  return process.memoryUsage().arrayBuffers;
}

/** What buffers hold once V8's sweeper, which frees collected buffers beside the program, is done (bounded wait). */
async function settled(target: number, waitMs: number): Promise<number> {
  let now = process.memoryUsage().arrayBuffers;
  for (const deadline = Date.now() + waitMs; now > target && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    now = process.memoryUsage().arrayBuffers;
  }
  return now;
}

test('before a large allocation, the memory of a dropped buffer is freed', async () => {
  const held = dropOne();
  reclaimBefore(RECLAIM_MIN_BYTES);
  // Freed within a few milliseconds; left to itself, V8 frees it about a second later here (the check then fails).
  const after = await settled(held - SIZE, 250);
  assert.ok(held - after >= SIZE, `freed ${held - after} bytes, expected at least ${SIZE}`);
});

test('before a small allocation, nothing is collected', async () => {
  const held = dropOne();
  reclaimBefore(RECLAIM_MIN_BYTES - 1);
  const after = await settled(held - SIZE, 200);
  assert.ok(held - after < SIZE, `freed ${held - after} bytes without a large allocation`);
});

test.run();
