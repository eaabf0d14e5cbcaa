/**
 * The gate at the top of every OpenCL test file:
 *
 * ```ts
 * if (await requireOpenCL()) { test(...); test.run(); }
 * ```
 *
 * It looks for an OpenCL platform with at least one device through the native library (libOpenCL.so.1; see
 * src/apis/opencl/probe.ts). Without
 * one: under CI (`process.env.CI` set) it throws, so the run fails clearly; elsewhere it prints a line starting with
 * `SKIPPED: ` and returns false, and the file registers no tests (the runner reports it as skipped, never passed).
 */
import { CL } from '../../src/apis/opencl/constants.js';
import { missingReason } from '../../src/apis/opencl/probe.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import type { Handle } from '../../src/guest/handle.js';

/** How to get an OpenCL platform, for the skip and failure messages. */
export const OPENCL_INSTALL_HINT = 'run scripts/install-opencl.sh';

/** The probe's answer, asked once per process: every test file of a suite process gates on it. */
let found: Promise<string | null> | undefined;

/**
 * True when an OpenCL platform with a device is present. Otherwise: throws under CI, else prints
 * `SKIPPED: ...` and returns false.
 * @throws Error "OpenCL tests need an OpenCL platform: run scripts/install-opencl.sh" when `CI` is set.
 */
export async function requireOpenCL(): Promise<boolean> {
  found ??= missingReason();
  const reason = await found;
  if (reason === null) return true;
  if (process.env.CI) throw new Error(`OpenCL tests need an OpenCL platform: ${OPENCL_INSTALL_HINT} (${reason})`);
  console.log(`SKIPPED: OpenCL tests skipped: no OpenCL platform with a device is present (${reason}); ${OPENCL_INSTALL_HINT} to run them`);
  return false;
}

/** A context and an in-order queue on the first device of the first platform, through `cl` (a guestlib's API). */
export async function openQueue(cl: ApiObject): Promise<{ devices: Handle[]; ctx: unknown; queue: unknown }> {
  const platforms = (await cl.clGetPlatformIDs!(1, true)).outs.platforms as Handle[];
  const devices = (await cl.clGetDeviceIDs!(platforms[0], CL.DEVICE_TYPE_ALL, 1, true)).outs.devices as Handle[];
  const { ret: ctx } = await cl.clCreateContext!(null, 1, devices, null, null);
  const { ret: queue } = await cl.clCreateCommandQueue!(ctx, devices[0], 0);
  return { devices, ctx, queue };
}
