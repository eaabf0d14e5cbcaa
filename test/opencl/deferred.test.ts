/**
 * Deferred transfers on a real OpenCL platform (spec `deferred`, `CallFrame.deliver`), at the session's level, over
 * the in-process and the unix channel: a non-blocking read queued behind a user event is answered at once without
 * its bytes; the bytes arrive as an event with the caller's id once the user event is set, and before the reply to
 * the wait that saw the read complete. A non-blocking write behind a user event does not hold back the call that
 * sets it. Through the guestlib, such a read resolves at once and the application's array is filled before the finish
 * resolves. (The C front's use of this, from native programs, is covered by fixtures/opencl-c/deferred_reads.c.)
 *
 * node --import tsx test/opencl/deferred.test.ts
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { EventFrame } from '../../src/wire/frames.js';
import { openQueue, requireOpenCL } from '../helpers/opencl.js';

const DELIVER = 4242;

/** `p`, or a rejection naming `what` after 20 s (a read the worker ran blocking would never be answered). */
const within = <T>(p: Promise<T>, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in 20 s`)), 20_000).unref())]);

if (await requireOpenCL()) {
  for (const transport of ['local', 'unix'] as const) {
    test(`${transport}: a non-blocking read behind a user event is answered at once; its bytes come before the wait's reply`, async () => {
      await using lib = await openGuestlib(openclSpec, { transport });
      const cl = lib.api;
      const { ctx, queue } = await openQueue(cl);
      const data = Uint8Array.from({ length: 256 }, (_, i) => i);
      const { ret: buffer } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, data.byteLength, data);
      const { ret: gate } = await cl.clCreateUserEvent!(ctx);
      const id = (h: unknown): number => (h as Handle).id;

      const seen: string[] = [];
      let delivered: EventFrame | undefined;
      lib.session.onEvent((e) => {
        if (e.callback === DELIVER) { delivered = e; seen.push('bytes'); }
      });
      // clEnqueueReadBuffer(queue, buffer, CL_FALSE, 16, 64, <out>, 1, [gate], <event>) as the C front sends it.
      const readEvent = lib.session.newHandleId();
      const read = await within(lib.session.call('clEnqueueReadBuffer', [id(queue), id(buffer), 0, 16, 64, true, 1, [id(gate)], readEvent], null, undefined, DELIVER), 'the read');
      assert.is(read.ret, CL.SUCCESS);
      assert.is(read.outs?.ptr, undefined, 'the reply carries no bytes');
      assert.is(delivered, undefined, 'nothing delivered while the user event is not set');

      // A non-blocking write behind another user event, then a call that must not wait for it.
      const { ret: gate2 } = await cl.clCreateUserEvent!(ctx);
      const patch = new Uint8Array(8).fill(0xee);
      await cl.clEnqueueWriteBuffer!(queue, buffer, 0, 200, 8, patch, 1, [gate2], null);
      await within(cl.clSetUserEventStatus!(gate, CL.COMPLETE), 'setting the user event behind a write');
      const wait = lib.session.call('clWaitForEvents', [1, [readEvent]]).then((r) => { seen.push('wait'); return r; });
      assert.is((await wait).ret, CL.SUCCESS);
      assert.equal(seen, ['bytes', 'wait'], 'the bytes come before the reply of the wait that saw the read complete');
      assert.equal(Array.from(delivered!.args[0] as Uint8Array), Array.from(data.subarray(16, 80)));

      await cl.clSetUserEventStatus!(gate2, CL.COMPLETE);
      await cl.clFinish!(queue);
      const back = new Uint8Array(8);
      await cl.clEnqueueReadBuffer!(queue, buffer, 1, 200, 8, back, 0, null, null);
      assert.equal(Array.from(back), Array.from(patch), 'the deferred write landed');
    });

    test(`${transport}: through the guestlib, a non-blocking read behind a user event resolves at once and fills the array before the finish resolves`, async () => {
      await using lib = await openGuestlib(openclSpec, { transport });
      const cl = lib.api;
      const { ctx, queue } = await openQueue(cl);
      const data = Uint32Array.from({ length: 64 }, (_, i) => 1000 + i);
      const { ret: buffer } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, data.byteLength, data);
      const { ret: gate } = await cl.clCreateUserEvent!(ctx);
      const out = new Uint32Array(64);
      const read = await within(cl.clEnqueueReadBuffer!(queue, buffer, CL.NON_BLOCKING, 0, data.byteLength, out, 1, [gate], null), 'the read');
      assert.is(read.ret, CL.SUCCESS);
      assert.ok(out.every((v) => v === 0), 'nothing read while the user event is not set');
      await cl.clSetUserEventStatus!(gate, CL.COMPLETE);
      await cl.clFinish!(queue);
      assert.equal(Array.from(out), Array.from(data));
    });
  }

  test.run();
}
