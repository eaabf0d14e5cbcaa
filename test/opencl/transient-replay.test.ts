/**
 * Transient objects across a migration on a real OpenCL platform: an event returned by an enqueue before the
 * migration is recreated completed on the target, so the application's later waits and queries on it succeed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Handle } from '../../src/guest/handle.js';
import { requireOpenCL } from '../helpers/opencl.js';

const SOURCE = `__kernel void inc(__global int *x) { x[get_global_id(0)] += 1; }`;

/** A journaled session on the local channel that migrates before call `call`, with its context and queue made (calls 0-3). */
async function migratingSession(call: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ava-transient-'));
  const lib = await openGuestlib(openclSpec, { transport: 'local', journal: { path: dir }, migrateAt: { kind: 'at', call } });
  try {
    const cl = lib.api;
    const platforms = (await cl.clGetPlatformIDs!(1, true)).outs.platforms as Handle[];
    const devices = (await cl.clGetDeviceIDs!(platforms[0], CL.DEVICE_TYPE_ALL, 1, true)).outs.devices as Handle[];
    const { ret: ctx } = await cl.clCreateContext!(null, 1, devices, null, null);
    const { ret: queue } = await cl.clCreateCommandQueue!(ctx, devices[0], 0);
    return { lib, dir, cl, devices, ctx, queue };
  } catch (error) {
    await lib.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

if (await requireOpenCL()) {
  test('an enqueue event made before a migration can be waited on and queried after it', async () => {
    // Calls: 0 platforms, 1 devices, 2 context, 3 queue, 4 program, 5 build, 6 kernel, 7 buffer, 8 set arg,
    // 9 enqueue (event), 10 finish; the migration happens before call 11.
    const { lib, dir, cl, devices, ctx, queue } = await migratingSession(11);
    try {
      const { ret: program } = await cl.clCreateProgramWithSource!(ctx, 1, [SOURCE], null);
      await cl.clBuildProgram!(program, 1, devices, '', null, null);
      const { ret: kernel } = await cl.clCreateKernel!(program, 'inc');
      const { ret: mem } = await cl.clCreateBuffer!(ctx, CL.MEM_COPY_HOST_PTR, 64, new Int32Array(16).fill(5));
      await cl.clSetKernelArg!(kernel, 0, 8, mem);
      const { outs } = await cl.clEnqueueNDRangeKernel!(queue, kernel, 1, null, [16], null, 0, null, true);
      const event = outs.event as Handle;
      await cl.clFinish!(queue);
      // Call 11 onwards run on the target.
      await cl.clWaitForEvents!(1, [event]);
      const status = new Int32Array(1);
      await cl.clGetEventInfo!(event, CL.EVENT_COMMAND_EXECUTION_STATUS, 4, status);
      assert.is(status[0], CL.COMPLETE, 'the recreated event is complete');
      // What the application can still ask it answers as before the migration: command type and queue.
      const type = new Uint32Array(1);
      await cl.clGetEventInfo!(event, CL.EVENT_COMMAND_TYPE, 4, type);
      assert.is(type[0], CL.COMMAND_NDRANGE_KERNEL, 'the command type is the launch, not CL_COMMAND_USER');
      const queueOf = new BigUint64Array(1);
      await cl.clGetEventInfo!(event, CL.EVENT_COMMAND_QUEUE, 8, queueOf);
      assert.is(lib.handleAt('command_queue', queueOf), queue, 'the event names the queue it was enqueued on');
      const out = new Int32Array(16);
      await cl.clEnqueueReadBuffer!(queue, mem, 1, 0, 64, out, 1, [event], false);
      assert.equal(Array.from(out), new Array(16).fill(6), 'the launch before the migration is in the buffer');
      assert.is(lib.migration!.reports.length, 1, 'the session moved');
      assert.is(lib.migration!.reports[0]!.call, 11);
      await cl.clReleaseEvent!(event);
      for (const [fn, h] of [['clReleaseMemObject', mem], ['clReleaseKernel', kernel], ['clReleaseProgram', program], ['clReleaseCommandQueue', queue], ['clReleaseContext', ctx]] as const) await cl[fn]!(h);
    } finally {
      await lib.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a non-blocking write that made an event: journaled without its bytes, its event recreated on the target', async () => {
    // Calls: 0 platforms, 1 devices, 2 context, 3 queue, 4 buffer, 5 write (event), 6 finish; the migration happens
    // before call 7.
    const { lib, dir, cl, ctx, queue } = await migratingSession(7);
    try {
      const { ret: mem } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE, 4096, null);
      const data = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
      const { outs } = await cl.clEnqueueWriteBuffer!(queue, mem, 0, 0, 4096, data, 0, null, true);
      const event = outs.event as Handle;
      await cl.clFinish!(queue);
      // Call 7 onwards run on the target.
      await cl.clWaitForEvents!(1, [event]);
      const out = new Uint8Array(4096);
      await cl.clEnqueueReadBuffer!(queue, mem, 1, 0, 4096, out, 0, null, false);
      assert.equal(out, data, 'the written bytes are in the buffer on the target');
      assert.is(lib.migration!.reports.length, 1, 'the session moved');
      const writes: unknown[][] = [];
      for await (const r of lib.journal!.records()) {
        if (openclSpec.functions[r.fn]?.name === 'clEnqueueWriteBuffer') writes.push(r.args as unknown[]);
      }
      assert.is(writes.length, 1, 'the write is journaled, for its event');
      assert.is(writes[0]![5], null, 'without its 4096 bytes (replay recreates the event, it never runs the write)');
      assert.is(writes[0]![4], 4096, 'the rest of the call as made');
      await cl.clReleaseEvent!(event);
      await cl.clReleaseMemObject!(mem);
      await cl.clReleaseCommandQueue!(queue);
      await cl.clReleaseContext!(ctx);
    } finally {
      await lib.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.run();
}
