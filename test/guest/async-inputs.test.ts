/**
 * Asynchronous calls copy their input bytes when they are made: the application may reuse its arrays (Node Buffers
 * included, whose `slice` is only a view) as soon as the call returns.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { GuestSession } from '../../src/guest/session.js';

/** Runs `body` on a toyacc guestlib over the unix channel with a context and a queue, closing it afterwards. */
async function withQueue(body: (opened: { lib: Guestlib; api: Guestlib['api']; ctx: Handle; queue: Handle }) => Promise<void>): Promise<void> {
  const lib = await openGuestlib(toyaccSpec, { transport: 'unix' });
  try {
    const api = lib.api;
    const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
    const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
    const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
    await body({ lib, api, ctx, queue });
  } finally {
    await lib.close();
  }
}

test('a posted write from a Buffer the application refills at once still writes the bytes it had', () => withQueue(async ({ lib, api, ctx, queue }) => {
  const buf = (await api.tq_create_buffer!(ctx, 0, 16, null)).ret as Handle;
  const scratch = Buffer.alloc(8, 1);
  const before = lib.session.callCount;
  await api.tq_enqueue_write!(queue, buf, 0, 8, scratch); // posted, not yet sent
  scratch.fill(2);
  await api.tq_enqueue_write!(queue, buf, 8, 8, scratch);
  scratch.fill(3);
  assert.is(lib.session.callCount, before + 2);
  const out = new Uint8Array(16);
  await api.tq_enqueue_read!(queue, buf, 0, 16, out);
  assert.equal(Array.from(out), [...new Array(8).fill(1), ...new Array(8).fill(2)]);
}));

test('posted calls carrying many bytes go out in several frames, none over the wire limit', () => withQueue(async ({ lib, api, ctx, queue }) => {
  const size = 16 * 1024 * 1024;
  const buf = (await api.tq_create_buffer!(ctx, 0, size, null)).ret as Handle;
  const chunk = new Uint8Array(size);
  // 8 x 16 MiB posted in one turn: more than GuestSession.MAX_BATCH_BYTES, so at least two frames.
  for (let i = 0; i < 8; i++) {
    chunk.fill(i + 1);
    await api.tq_enqueue_write!(queue, buf, 0, size, chunk);
  }
  assert.ok(8 * size > GuestSession.MAX_BATCH_BYTES);
  const out = new Uint8Array(4);
  await api.tq_enqueue_read!(queue, buf, size - 4, 4, out);
  assert.equal(Array.from(out), [8, 8, 8, 8], 'every posted write arrived, in order');
  const status = await api.tq_finish!(queue);
  assert.is(status.ret, TQ.SUCCESS);
}));

test('calls posted while the session is held (a migration) go out in batches under the frame limit, in order', () => withQueue(async ({ lib, api, ctx, queue }) => {
  const part = 24 * 1024 * 1024;
  const buf = (await api.tq_create_buffer!(ctx, 0, 5 * part, null)).ret as Handle;
  const channel = lib.session.channel;
  const sent: number[] = [];
  const post = channel.post.bind(channel);
  channel.post = (calls) => {
    sent.push(calls.reduce((n, c) => n + c.args.reduce<number>((m, a) => m + (a instanceof Uint8Array ? a.byteLength : 0), 0), 0));
    post(calls);
  };
  // Held as a migration holds it: five writes of 24 MiB (120 MiB, past the 64 MiB a batch may carry) queue up.
  let release = (): void => {};
  const held = lib.session.runExclusive(() => new Promise<void>((resolve) => { release = resolve; }));
  sent.length = 0; // what was queued before (the buffer's creation) went out when the hold began
  let whileHeld: number[];
  try {
    for (let k = 0; k < 5; k++) await api.tq_enqueue_write!(queue, buf, k * part, part, new Uint8Array(part).fill(k + 1));
    whileHeld = [...sent];
  } finally {
    release(); // a failure above must not leave the session held (close would wait for it)
  }
  await held;
  assert.equal(whileHeld, [], 'nothing goes out while the session is held');
  const out = new Uint8Array(5 * part);
  await api.tq_enqueue_read!(queue, buf, 0, out.byteLength, out);
  for (let k = 0; k < 5; k++) assert.is(out[k * part + 17], k + 1, `write ${k} landed`);
  assert.ok(sent.length >= 2 && sent.every((n) => n <= GuestSession.MAX_BATCH_BYTES), `batches of ${sent.join(', ')} bytes`);
}));

test.run();
