/**
 * Errors and callbacks of the OpenCL spec through the guestlib (local channel) on a real platform: API statuses
 * with their names, the build log, bad handles (forged, released) in both status modes, argument types refused
 * before anything is sent, unsupported functions and callbacks, delivered callbacks (build notify, event
 * callback), and the info-query size probe.
 *
 * node --import tsx test/opencl/errors.test.ts
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLog, buildProgram, infoString, openclWorkloadContext, ProgramBuildError } from '../../fixtures/opencl/common.js';
import type { OpenclWorkloadContext } from '../../fixtures/opencl/common.js';
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { ApiStatusError, AvaError } from '../../src/errors.js';
import { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import { requireOpenCL } from '../helpers/opencl.js';

const BROKEN = '__kernel void broken(__global float *x) { x[get_global_id(0)] = not_declared_anywhere * 2.0f; }';
const GOOD = '__kernel void one(__global float *x) { x[get_global_id(0)] = 1.0f; }';

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<AvaError & { status?: number; statusName?: string }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `expected an ava-migrate error, got ${String(error)}`);
    return error as AvaError & { status?: number; statusName?: string };
  }
  return assert.unreachable('the call should have failed') as never;
}

/** Resolves with the arguments of the first call of the returned callback, or rejects after `ms`. */
function callbackProbe(ms = 10_000): { fn: (...args: unknown[]) => void; called: Promise<unknown[]> } {
  let fn!: (...args: unknown[]) => void;
  const called = new Promise<unknown[]>((resolve, reject) => {
    // Not unref'd: a callback that comes from the library's own thread keeps nothing else waiting, and without the
    // timer the process could end (uvu: "Exiting early") before a late callback arrives on a loaded machine.
    const timer = setTimeout(() => reject(new Error(`the callback did not arrive within ${ms} ms`)), ms);
    fn = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args);
    };
  });
  called.catch(() => undefined); // awaited by the test when it gets that far; never an unhandled rejection
  return { fn, called };
}

async function withGuest<T>(body: (lib: Guestlib, ctx: OpenclWorkloadContext) => Promise<T>, options: { statusErrors?: 'throw' | 'return' } = {}): Promise<T> {
  await using lib = await openGuestlib(openclSpec, options);
  const ctx = await openclWorkloadContext(lib.api, lib.handleAt);
  try {
    return await body(lib, ctx);
  } finally {
    await ctx.release().catch(() => undefined);
  }
}

if (await requireOpenCL()) {
  test('a kernel that does not compile: CL_BUILD_PROGRAM_FAILURE (-11), and the build log holds the compiler message', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: program } = await cl.clCreateProgramWithSource!(ctx.context, 1, [BROKEN], null);
      const error = await rejection(cl.clBuildProgram!(program, 1, [ctx.device], null, null, null));
      assert.ok(error instanceof ApiStatusError);
      assert.is(error.code, 'ERR_AVA_API_STATUS');
      assert.is(error.status, CL.BUILD_PROGRAM_FAILURE);
      assert.is(error.statusName, 'CL_BUILD_PROGRAM_FAILURE');
      // Size probe with a NULL value first, then the log itself.
      const probe = await cl.clGetProgramBuildInfo!(program, ctx.device, CL.PROGRAM_BUILD_LOG, 0, null);
      const size = Number(probe.outs.param_value_size_ret);
      assert.ok(size > 1, `build log size ${size}`);
      const bytes = new Uint8Array(size);
      const read = await cl.clGetProgramBuildInfo!(program, ctx.device, CL.PROGRAM_BUILD_LOG, size, bytes);
      assert.is(read.ret, CL.SUCCESS);
      assert.is(read.outs.param_value_size_ret, size);
      assert.is(bytes[size - 1], 0, 'the log is NUL-terminated');
      const log = Buffer.from(bytes.subarray(0, size - 1)).toString('utf8');
      assert.match(log, /not_declared_anywhere/);
      assert.match(log, /error/i);
      assert.is(await buildLog(cl, program as Handle, ctx.device), log);
      // The fixtures' helper turns the same failure into an error carrying the log.
      const helper = await buildProgram(ctx, BROKEN).then(() => null, (e: unknown) => e);
      assert.ok(helper instanceof ProgramBuildError, 'buildProgram throws a ProgramBuildError');
      assert.is((helper as ProgramBuildError).status, CL.BUILD_PROGRAM_FAILURE);
      assert.match((helper as ProgramBuildError).log, /not_declared_anywhere/);
      await cl.clReleaseProgram!(program);
    });
  });

  test('images: the element size travels with the handle (a too-small host array is refused before sending), bad descriptors are refused', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const format = { image_channel_order: CL.RGBA, image_channel_data_type: CL.FLOAT };
      const { ret: image } = await cl.clCreateImage!(ctx.context, CL.MEM_READ_WRITE, format,
        { image_type: CL.MEM_OBJECT_IMAGE2D, image_width: 8, image_height: 4 }, null);
      // 3 x 2 pixels of RGBA floats: (2 - 1) * 48 + 48 = 96 bytes; 95 is one short.
      const small = await rejection(cl.clEnqueueReadImage!(ctx.queue, image, CL.BLOCKING, [0, 0, 0], [3, 2, 1], 0, 0, new Uint8Array(95), 0, null, null));
      assert.is(small.code, 'ERR_AVA_ARG_TYPE');
      assert.match(small.message, /needs 96/);
      const pixels = new Float32Array(24).map((_, i) => i + 0.5);
      await cl.clEnqueueWriteImage!(ctx.queue, image, CL.BLOCKING, [1, 1, 0], [3, 2, 1], 0, 0, pixels, 0, null, null);
      const back = new Float32Array(24);
      await cl.clEnqueueReadImage!(ctx.queue, image, CL.BLOCKING, [1, 1, 0], [3, 2, 1], 0, 0, back, 0, null, null);
      assert.equal([...back], [...pixels]);
      const typo = await rejection(cl.clCreateImage!(ctx.context, CL.MEM_READ_WRITE, format, { image_type: CL.MEM_OBJECT_IMAGE2D, width: 8 }, null));
      assert.is(typo.code, 'ERR_AVA_ARG_TYPE');
      assert.match(typo.message, /not "width"/);
      // A forged handle inside cl_image_desc is the API's own status, as natively.
      const forged = await rejection(cl.clCreateImage!(ctx.context, CL.MEM_READ_WRITE, format,
        { image_type: CL.MEM_OBJECT_IMAGE1D_BUFFER, image_width: 8, buffer: new Handle('mem', 987654) }, null));
      assert.is(forged.status, CL.INVALID_MEM_OBJECT);
      await cl.clReleaseMemObject!(image);
    });
  });

  test('clSetKernelArg with a wrong argument index: CL_INVALID_ARG_INDEX (-49) with its name; returned as a value in return mode', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const program = await buildProgram(ctx, GOOD);
      const { ret: kernel } = await cl.clCreateKernel!(program, 'one');
      const { ret: mem } = await cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, 64, null);
      await cl.clSetKernelArg!(kernel, 0, 8, mem);
      const error = await rejection(cl.clSetKernelArg!(kernel, 7, 8, mem));
      assert.ok(error instanceof ApiStatusError);
      assert.is(error.status, CL.INVALID_ARG_INDEX);
      assert.is(error.statusName, 'CL_INVALID_ARG_INDEX');
      assert.match(error.message, /clSetKernelArg/);
      for (const [fn, h] of [['clReleaseMemObject', mem], ['clReleaseKernel', kernel], ['clReleaseProgram', program]] as const) await cl[fn]!(h);
    });
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const program = await buildProgram(ctx, GOOD);
      const { ret: kernel } = await cl.clCreateKernel!(program, 'one');
      const { ret } = await cl.clSetKernelArg!(kernel, 7, 4, new Float32Array(1));
      assert.is(ret, CL.INVALID_ARG_INDEX);
      await cl.clReleaseKernel!(kernel);
      await cl.clReleaseProgram!(program);
    }, { statusErrors: 'return' });
  });

  test('a forged handle: ERR_AVA_UNKNOWN_HANDLE', async () => {
    await withGuest(async (lib) => {
      const error = await rejection(lib.api.clGetMemObjectInfo!(new Handle('mem', 99999), CL.MEM_SIZE, 8, new BigUint64Array(1)));
      assert.is(error.code, 'ERR_AVA_UNKNOWN_HANDLE');
      assert.match(error.message, /99999/);
    });
  });

  test('a released buffer: ERR_AVA_STALE_HANDLE; in return mode CL_INVALID_MEM_OBJECT (-38), as natively for an invalid buffer', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: mem } = await cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, 64, null);
      await cl.clReleaseMemObject!(mem);
      const error = await rejection(cl.clGetMemObjectInfo!(mem, CL.MEM_SIZE, 8, new BigUint64Array(1)));
      assert.is(error.code, 'ERR_AVA_STALE_HANDLE');
      assert.is((error as { status?: number }).status, CL.INVALID_MEM_OBJECT);
    });
    const guestRet = await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: mem } = await cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, 64, null);
      assert.is((await cl.clReleaseMemObject!(mem)).ret, CL.SUCCESS);
      const { ret, outs } = await cl.clGetMemObjectInfo!(mem, CL.MEM_SIZE, 8, new BigUint64Array(1));
      assert.is(outs.param_value_size_ret, undefined, 'nothing was written');
      // An enqueue on the released buffer gets the same status.
      const write = await cl.clEnqueueWriteBuffer!(ctx.queue, mem, CL.BLOCKING, 0, 4, new Float32Array(1), 0, null, null);
      assert.is(write.ret, CL.INVALID_MEM_OBJECT);
      return ret;
    }, { statusErrors: 'return' });
    assert.is(guestRet, CL.INVALID_MEM_OBJECT);
    // Natively, an invalid buffer (NULL: a freed one would be undefined behaviour) gives the same status.
    await using native = await openNativeApi(openclSpec, { statusErrors: 'return' });
    const { ret: nativeRet } = await native.api.clGetMemObjectInfo!(new Handle('mem', 0), CL.MEM_SIZE, 8, new BigUint64Array(1));
    assert.is(nativeRet, guestRet);
  });

  test('a wrong JavaScript type: ERR_AVA_ARG_TYPE with nothing sent', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const before = lib.session.callCount;
      const cases: [string, Promise<unknown>][] = [
        ['size as a string', cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, '64', null)],
        ['a number for a handle', cl.clGetDeviceInfo!(1234, CL.DEVICE_NAME, 0, null)],
        ['a too-small destination', cl.clGetDeviceInfo!(ctx.device, CL.DEVICE_MAX_COMPUTE_UNITS, 4, new Uint8Array(2))],
        ['a string for a kernel argument value', cl.clSetKernelArg!(new Handle('kernel', 1), 0, 8, 'buffer')],
        ['a missing argument', cl.clFinish!()],
      ];
      for (const [what, call] of cases) {
        const error = await rejection(call);
        assert.is(error.code, 'ERR_AVA_ARG_TYPE', what);
      }
      assert.is(lib.session.callCount, before, 'no call was sent');
    });
  });

  test('an unsupported function (clEnqueueNativeKernel): ERR_AVA_UNSUPPORTED naming it, nothing sent', async () => {
    await withGuest(async (lib, ctx) => {
      const before = lib.session.callCount;
      const error = await rejection(lib.api.clEnqueueNativeKernel!(ctx.queue, () => undefined, null, 0, 0, null, null, 0, null, null));
      assert.is(error.code, 'ERR_AVA_UNSUPPORTED');
      assert.match(error.message, /clEnqueueNativeKernel/);
      assert.is(lib.session.callCount, before);
    });
  });

  test('clCreateContext with a non-NULL notify callback: accepted (never called); a non-NULL mem destructor callback is ERR_AVA_UNSUPPORTED, the session goes on', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      let notified = 0;
      const { ret: context } = await cl.clCreateContext!([CL.CONTEXT_PLATFORM, ctx.platform, 0], 1, [ctx.device], () => { notified++; }, null);
      assert.instance(context, Handle);
      const { ret: mem } = await cl.clCreateBuffer!(context, CL.MEM_READ_WRITE, 64, null);
      const error = await rejection(cl.clSetMemObjectDestructorCallback!(mem, () => undefined, null));
      assert.is(error.code, 'ERR_AVA_UNSUPPORTED');
      assert.match(error.message, /clSetMemObjectDestructorCallback/);
      assert.match(error.message, /pfn_notify/);
      assert.is((await cl.clReleaseMemObject!(mem)).ret, CL.SUCCESS);
      assert.is((await cl.clReleaseContext!(context)).ret, CL.SUCCESS);
      assert.is(notified, 0, 'the notify callback is never called');
    });
  });

  test('clBuildProgram with a notify callback: called with the program handle (===) and the user data', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: program } = await cl.clCreateProgramWithSource!(ctx.context, 1, [GOOD], null);
      const userData = { tag: 'build-notify', n: 42 };
      const probe = callbackProbe();
      const { ret } = await cl.clBuildProgram!(program, 1, [ctx.device], null, probe.fn, userData);
      assert.is(ret, CL.SUCCESS);
      const args = await probe.called;
      assert.is(args.length, 2);
      assert.ok(args[0] === program, `the callback got ${String(args[0])}, not ${String(program)}`);
      assert.ok(args[1] === userData, 'the user data is the very value passed');
      const status = new Int32Array(1);
      await cl.clGetProgramBuildInfo!(program, ctx.device, CL.PROGRAM_BUILD_STATUS, 4, status);
      assert.is(status[0], CL.BUILD_SUCCESS);
      await cl.clReleaseProgram!(program);
    });
  });

  test('clSetEventCallback on a user event set to CL_COMPLETE: the callback arrives with the event and status', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: event } = await cl.clCreateUserEvent!(ctx.context);
      const probe = callbackProbe();
      let early = false;
      await cl.clSetEventCallback!(event, CL.COMPLETE, (...a: unknown[]) => { probe.fn(...a); }, 'user-data');
      void probe.called.then(() => { early = true; });
      await new Promise((r) => setTimeout(r, 20));
      assert.not.ok(early, 'no callback before the status is set');
      await cl.clSetUserEventStatus!(event, CL.COMPLETE);
      const args = await probe.called;
      assert.ok(args[0] === event, `the callback got ${String(args[0])}, not ${String(event)}`);
      assert.is(args[1], CL.COMPLETE);
      assert.is(args[2], 'user-data');
      await cl.clReleaseEvent!(event);
    });
  });

  test('info-query size probe: a NULL value returns the size in param_value_size_ret, as natively', async () => {
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const probe = await cl.clGetDeviceInfo!(ctx.device, CL.DEVICE_NAME, 0, null);
      assert.is(probe.ret, CL.SUCCESS);
      const size = probe.outs.param_value_size_ret;
      assert.type(size, 'number');
      assert.is(size, Buffer.byteLength(ctx.deviceName) + 1);
      const platformProbe = await cl.clGetPlatformInfo!(ctx.platform, CL.PLATFORM_NAME, 0, null);
      assert.is(platformProbe.outs.param_value_size_ret, Buffer.byteLength(ctx.platformName) + 1);
      // A value too small for the answer is CL_INVALID_VALUE, natively and here.
      const error = await rejection(cl.clGetDeviceInfo!(ctx.device, CL.DEVICE_NAME, 2, new Uint8Array(2)));
      assert.is(error.status, CL.INVALID_VALUE);

      await using native = await openNativeApi(openclSpec);
      const nctx = await openclWorkloadContext(native.api, native.handleAt);
      try {
        const nativeProbe = await native.api.clGetDeviceInfo!(nctx.device, CL.DEVICE_NAME, 0, null);
        assert.is(nativeProbe.outs.param_value_size_ret, size);
        assert.is(await infoString(native.api, 'clGetDeviceInfo', nctx.device, CL.DEVICE_NAME), ctx.deviceName);
      } finally {
        await nctx.release();
      }
    });
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Reproductions of defects in src/ (these fail until they are fixed; see the notes).

  test('BUG repro: an event returned by an enqueue is stale after clReleaseEvent (ERR_AVA_STALE_HANDLE)', async () => {
    // src/worker/executor.ts finish(): handle outs are bound with refcounted = (f.record === 'create'), so an
    // enqueue's event gets refs null and clReleaseEvent never retires its id: the next use passes a freed pointer.
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: mem } = await cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, 64, null);
      const { outs } = await cl.clEnqueueFillBuffer!(ctx.queue, mem, new Float32Array([1]), 4, 0, 64, 0, null, true);
      await cl.clFinish!(ctx.queue);
      assert.is((await cl.clReleaseEvent!(outs.event)).ret, CL.SUCCESS);
      const error = await rejection(cl.clGetEventInfo!(outs.event, CL.EVENT_COMMAND_EXECUTION_STATUS, 4, new Int32Array(1)));
      assert.is(error.code, 'ERR_AVA_STALE_HANDLE');
      await cl.clReleaseMemObject!(mem);
    });
  });

  test('BUG repro: an event callback names the live event, not a released event that had the same address', async () => {
    // src/worker/session.ts #callbackValue: the first live handle with the pointer wins, and released enqueue events
    // stay "live" (previous test), so a user event at a recycled address is reported as the old event.
    await withGuest(async (lib, ctx) => {
      const cl = lib.api;
      const { ret: mem } = await cl.clCreateBuffer!(ctx.context, CL.MEM_READ_WRITE, 64, null);
      const wrong: string[] = [];
      // Whether an address comes back is up to the allocator: many rounds, several released events per round.
      for (let i = 0; i < 200 && wrong.length < 3; i++) {
        for (let k = 0; k < 3; k++) {
          const { outs } = await cl.clEnqueueFillBuffer!(ctx.queue, mem, new Float32Array([1]), 4, 0, 64, 0, null, true);
          await cl.clFinish!(ctx.queue);
          await cl.clReleaseEvent!(outs.event);
        }
        const { ret: userEvent } = await cl.clCreateUserEvent!(ctx.context);
        const probe = callbackProbe();
        await cl.clSetEventCallback!(userEvent, CL.COMPLETE, probe.fn, null);
        await cl.clSetUserEventStatus!(userEvent, CL.COMPLETE);
        const [got] = await probe.called;
        if (got !== userEvent) wrong.push(`round ${i}: ${String(got)} instead of ${String(userEvent)}`);
        await cl.clReleaseEvent!(userEvent);
      }
      assert.equal(wrong, []);
      await cl.clReleaseMemObject!(mem);
    });
  });

  test('BUG repro: openNativeApi callbacks: a prototype used twice in one process, and handles (===) as arguments', async () => {
    // src/worker/native-api.ts register(): koffi.proto(proto) on every registration throws "Duplicate type name
    // 'cl_build_notify'" the second time (and whenever the worker session, with its own cache, declared it first);
    // and pointer arguments come back as numbers, not as the binding's Handle objects.
    await using native = await openNativeApi(openclSpec);
    const ctx = await openclWorkloadContext(native.api, native.handleAt);
    try {
      for (let round = 0; round < 2; round++) {
        const { ret: program } = await native.api.clCreateProgramWithSource!(ctx.context, 1, [GOOD], null);
        const probe = callbackProbe();
        const outcome = await native.api.clBuildProgram!(program, 1, [ctx.device], null, probe.fn, round).then(
          (r) => `ret ${String(r.ret)}`, (e: unknown) => `rejected: ${(e as Error).message}`);
        assert.is(outcome, `ret ${CL.SUCCESS}`, `round ${round}`);
        const args = await probe.called;
        assert.ok(args[0] === program, `round ${round}: the callback got ${String(args[0])}, not the program handle ${String(program)}`);
        assert.is(args[1], round);
        await native.api.clReleaseProgram!(program);
      }
    } finally {
      await ctx.release();
    }
  });

  test.run();
}
