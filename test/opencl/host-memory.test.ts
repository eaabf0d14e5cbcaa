/**
 * Host memory across the guest/worker boundary on a real OpenCL platform: CL_MEM_USE_HOST_PTR gets copy
 * semantics with the application's array brought up to date at finish and at reads of the buffer, and the
 * application's own writes into that array carried to the device before a launch, a wait or a transfer of it;
 * ranged explicit state of OpenCL buffers and images (what carries those writes, and what a migration streams).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import type { Handle } from '../../src/guest/handle.js';
import { changedRuns } from '../../src/guest/host-mirror.js';
import { openQueue, requireOpenCL } from '../helpers/opencl.js';

const SOURCE = `__kernel void twice(__global float *x) { size_t i = get_global_id(0); x[i] = 2.0f * x[i] + 1.0f; }`;
const HALVES = `
__kernel void first_half(__global int *x) { int i = (int)get_global_id(0); x[i] = 1000 + i; }
__kernel void copy(__global const int *x, __global int *y) { int i = (int)get_global_id(0); y[i] = x[i]; }`;

test('changedRuns: exact runs of changed bytes, block by block; past the limit one span', () => {
  const before = new Uint8Array(10_000);
  const now = Uint8Array.from(before);
  assert.equal(changedRuns(now, before), []);
  now[0] = 1; now[1] = 1; now[4095] = 2; now[4096] = 2; now[9999] = 3;
  assert.equal(changedRuns(now, before), [[0, 2], [4095, 4097], [9999, 10_000]]);
  assert.equal(changedRuns(now, before, 2), [[0, 10_000]]);
});

/** Builds `source` and makes the kernels named. */
async function build(cl: ApiObject, ctx: unknown, devices: Handle[], source: string, names: readonly string[]): Promise<{ program: unknown; kernels: unknown[] }> {
  const { ret: program } = await cl.clCreateProgramWithSource!(ctx, 1, [source], null);
  await cl.clBuildProgram!(program, 1, devices, '', null, null);
  const kernels: unknown[] = [];
  for (const name of names) kernels.push((await cl.clCreateKernel!(program, name)).ret);
  return { program, kernels };
}

if (await requireOpenCL()) {
  test('USE_HOST_PTR: a kernel result reaches the application array at clFinish, not before a sync point', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const { devices, ctx, queue } = await openQueue(cl);
    const { program, kernels: [kernel] } = await build(cl, ctx, devices, SOURCE, ['twice']);
    const host = new Float32Array(1024).map((_, i) => i);
    const { ret: mem } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_USE_HOST_PTR, host.byteLength, host);
    await cl.clSetKernelArg!(kernel, 0, 8, mem);
    await cl.clEnqueueNDRangeKernel!(queue, kernel, 1, null, [1024], null, 0, null, false);
    assert.is(host[3], 3, 'the array is not touched by a launch alone');
    await cl.clFinish!(queue);
    assert.is(host[3], 7);
    assert.is(host[1023], 2047);
    // A write through the API and a read of the same buffer bring the array up to date too.
    await cl.clEnqueueWriteBuffer!(queue, mem, 1, 0, 4, new Float32Array([42]), 0, null, false);
    const one = new Float32Array(1);
    await cl.clEnqueueReadBuffer!(queue, mem, 1, 0, 4, one, 0, null, false);
    assert.is(one[0], 42);
    assert.is(host[0], 42);
    for (const [fn, h] of [['clReleaseKernel', kernel], ['clReleaseProgram', program], ['clReleaseMemObject', mem], ['clReleaseCommandQueue', queue], ['clReleaseContext', ctx]] as const) {
      await cl[fn]!(h);
    }
  });

  test('USE_HOST_PTR written by the application after create (no map, no write): launches see it, and a kernel\'s writes to another part survive', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const { devices, ctx, queue } = await openQueue(cl);
    const { program, kernels: [firstHalf, copy] } = await build(cl, ctx, devices, HALVES, ['first_half', 'copy']);
    const n = 2048;
    const x = new Int32Array(n).fill(-1);
    const y = new Int32Array(n);
    const { ret: mx } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_USE_HOST_PTR, x.byteLength, x);
    const { ret: my } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_USE_HOST_PTR, y.byteLength, y);
    await cl.clSetKernelArg!(firstHalf, 0, 8, mx);
    await cl.clEnqueueNDRangeKernel!(queue, firstHalf, 1, null, [n / 2], null, 0, null, false);
    // A blocking read of the other buffer: the kernel has completed, and x's array was not refreshed.
    await cl.clEnqueueReadBuffer!(queue, my, 1, 0, 4, new Int32Array(1), 0, null, false);
    assert.is(x[0], -1, 'the array of x is not refreshed by a read of y');
    for (let i = n / 2; i < n; i++) x[i] = 5000 + i;
    await cl.clSetKernelArg!(copy, 0, 8, mx);
    await cl.clSetKernelArg!(copy, 1, 8, my);
    await cl.clEnqueueNDRangeKernel!(queue, copy, 1, null, [n], null, 0, null, false);
    await cl.clFinish!(queue);
    for (let i = 0; i < n; i++) assert.is(y[i], i < n / 2 ? 1000 + i : 5000 + i, `y[${i}]`);
    assert.is(x[0], 1000, 'the finish refreshed x with the kernel\'s half');
    // A transfer from the buffer just written on the host carries the new bytes.
    x.fill(7);
    const out = new Int32Array(n);
    await cl.clEnqueueReadBuffer!(queue, mx, 1, 0, x.byteLength, out, 0, null, false);
    assert.ok(out.every((v) => v === 7));
    for (const [fn, h] of [['clReleaseKernel', firstHalf], ['clReleaseKernel', copy], ['clReleaseProgram', program], ['clReleaseMemObject', mx], ['clReleaseMemObject', my], ['clReleaseCommandQueue', queue], ['clReleaseContext', ctx]] as const) {
      await cl[fn]!(h);
    }
  });

  test('ranged explicit state: a buffer and a 3-D image read and written at byte ranges that cut rows and slices', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const channel = lib.session.channel;
    const { devices, ctx, queue } = await openQueue(cl);
    const format = { image_channel_order: CL.RGBA, image_channel_data_type: CL.UNSIGNED_INT8 };
    // 5 x 3 x 4 pixels of 4 bytes: rows of 20 bytes, slices of 60, 240 in all.
    const pixels = Uint8Array.from({ length: 240 }, (_, i) => i);
    const { ret: image } = await cl.clCreateImage!(ctx, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, format,
      { image_type: CL.MEM_OBJECT_IMAGE3D, image_width: 5, image_height: 3, image_depth: 4 }, pixels);
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
    const { ret: buffer } = await cl.clCreateBuffer!(ctx, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, bytes.byteLength, bytes);
    const idOf = (h: unknown): number => (h as Handle).id;
    for (const [offset, length] of [[0, 240], [7, 100], [55, 70], [230, 50], [240, 10]] as const) {
      const got = await channel.extractState(idOf(image), false, { offset, length });
      assert.equal(Array.from(got), Array.from(pixels.subarray(offset, offset + length)), `image range ${offset}+${length}`);
    }
    assert.equal(Array.from(await channel.extractState(idOf(buffer), false, { offset: 333, length: 10 })), Array.from(bytes.subarray(333, 343)));
    // Writes at ranges that start and end inside rows, across a slice boundary; and into the buffer.
    const patch = Uint8Array.from({ length: 50 }, () => 0xee);
    await channel.restoreState(idOf(image), patch, undefined, false, 45);
    pixels.set(patch, 45);
    const back = new Uint8Array(240);
    await cl.clEnqueueReadImage!(queue, image, CL.BLOCKING, [0, 0, 0], [5, 3, 4], 0, 0, back, 0, null, null);
    assert.equal(Array.from(back), Array.from(pixels));
    await channel.restoreState(idOf(buffer), patch.subarray(0, 9), undefined, false, 991);
    bytes.set(patch.subarray(0, 9), 991);
    const whole = new Uint8Array(1000);
    await cl.clEnqueueReadBuffer!(queue, buffer, CL.BLOCKING, 0, 1000, whole, 0, null, null);
    assert.equal(Array.from(whole), Array.from(bytes));
    const past = await channel.restoreState(idOf(buffer), patch, undefined, false, 990).then(() => undefined, (e: unknown) => e as Error);
    assert.ok(past, 'a range past the end is refused');
  });

  test('COPY_HOST_PTR: the application array is copied at create and never written back', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const { devices, ctx, queue } = await openQueue(cl);
    const host = new Uint32Array([1, 2, 3, 4]);
    const { ret: mem } = await cl.clCreateBuffer!(ctx, CL.MEM_COPY_HOST_PTR, 16, host);
    host[0] = 99;
    await cl.clEnqueueWriteBuffer!(queue, mem, 1, 4, 4, new Uint32Array([7]), 0, null, false);
    await cl.clFinish!(queue);
    const out = new Uint32Array(4);
    await cl.clEnqueueReadBuffer!(queue, mem, 1, 0, 16, out, 0, null, false);
    assert.equal(Array.from(out), [1, 7, 3, 4]);
    assert.is(host[0], 99);
    assert.is(host[1], 2);
  });

  test.run();
}
