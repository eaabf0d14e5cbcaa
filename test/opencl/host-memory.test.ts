/**
 * Host memory across the guest/worker boundary on a real OpenCL platform: CL_MEM_USE_HOST_PTR gets copy
 * semantics with the application's array brought up to date at finish and at reads of the buffer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Handle } from '../../src/guest/handle.js';
import { requireOpenCL } from '../helpers/opencl.js';

const SOURCE = `__kernel void twice(__global float *x) { size_t i = get_global_id(0); x[i] = 2.0f * x[i] + 1.0f; }`;

if (await requireOpenCL()) {
  test('USE_HOST_PTR: a kernel result reaches the application array at clFinish, not before a sync point', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const platforms = (await cl.clGetPlatformIDs!(1, true)).outs.platforms as Handle[];
    const devices = (await cl.clGetDeviceIDs!(platforms[0], CL.DEVICE_TYPE_ALL, 1, true)).outs.devices as Handle[];
    const { ret: ctx } = await cl.clCreateContext!(null, 1, devices, null, null);
    const { ret: queue } = await cl.clCreateCommandQueue!(ctx, devices[0], 0);
    const { ret: program } = await cl.clCreateProgramWithSource!(ctx, 1, [SOURCE], null);
    await cl.clBuildProgram!(program, 1, devices, '', null, null);
    const { ret: kernel } = await cl.clCreateKernel!(program, 'twice');
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

  test('COPY_HOST_PTR: the application array is copied at create and never written back', async () => {
    await using lib = await openGuestlib(openclSpec);
    const cl = lib.api;
    const platforms = (await cl.clGetPlatformIDs!(1, true)).outs.platforms as Handle[];
    const devices = (await cl.clGetDeviceIDs!(platforms[0], CL.DEVICE_TYPE_ALL, 1, true)).outs.devices as Handle[];
    const { ret: ctx } = await cl.clCreateContext!(null, 1, devices, null, null);
    const { ret: queue } = await cl.clCreateCommandQueue!(ctx, devices[0], 0);
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
