/**
 * The gate at the top of every OpenCL test file:
 *
 * ```ts
 * if (await requireOpenCL()) { test(...); test.run(); }
 * ```
 *
 * It looks for an OpenCL platform with at least one device through the native library (libOpenCL.so.1). Without
 * one: under CI (`process.env.CI` set) it throws, so the run fails clearly; elsewhere it prints a line starting with
 * `SKIPPED: ` and returns false, and the file registers no tests (the runner reports it as skipped, never passed).
 */
import { CL } from '../../src/apis/opencl/constants.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { openNativeApi } from '../../src/worker/native-api.js';

export const OPENCL_INSTALL_HINT = 'run scripts/install-opencl.sh';

let found: Promise<string | null> | undefined;

/** Why no usable platform is present, or null when one is. */
async function missingReason(): Promise<string | null> {
  let native;
  try {
    native = await openNativeApi(openclSpec, { statusErrors: 'return' });
  } catch (error) {
    return `libOpenCL.so.1 does not load (${(error as Error).message})`;
  }
  try {
    const api = native.api;
    const { ret, outs } = await api.clGetPlatformIDs!(0, null);
    const count = Number(outs.num_platforms ?? 0);
    if (ret !== CL.SUCCESS || count === 0) return `clGetPlatformIDs finds no platform (status ${String(ret)})`;
    const { outs: list } = await api.clGetPlatformIDs!(count, true);
    for (const platform of list.platforms as unknown[]) {
      const probe = await api.clGetDeviceIDs!(platform, CL.DEVICE_TYPE_ALL, 0, null);
      if (probe.ret === CL.SUCCESS && Number(probe.outs.num_devices) > 0) return null;
    }
    return `none of the ${count} OpenCL platform(s) has a device`;
  } catch (error) {
    return `the OpenCL platform query failed (${(error as Error).message})`;
  } finally {
    await native.close();
  }
}

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
