/**
 * Whether this machine can run OpenCL work at all: the native library (libOpenCL.so.1) loads and lists a platform
 * with at least one device. The OpenCL tests and benchmarks ask this first, to skip (or fail under CI) with a
 * reason instead of failing somewhere inside the first call.
 */
import { openNativeApi } from '../../worker/native-api.js';
import { CL } from './constants.js';
import { openclSpec } from './spec.js';

/** Options of {@link missingReason}. */
export interface OpenclProbeOptions {
  /**
   * Only the first platform the loader lists counts. For callers that, like the C fixture programs, always use the
   * first platform: a device on a later one would not help them. Default false: any platform with a device will do.
   */
  readonly firstPlatformOnly?: boolean;
}

/**
 * Why no usable OpenCL platform with a device is present, or null when one is.
 * Never throws: a library that does not load or a failing query is itself the reason.
 * @example
 * const reason = await missingReason();
 * if (reason !== null) console.log(`SKIPPED: no OpenCL platform with a device (${reason})`);
 */
export async function missingReason(options: OpenclProbeOptions = {}): Promise<string | null> {
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
    const { outs: list } = await api.clGetPlatformIDs!(options.firstPlatformOnly ? 1 : count, true);
    for (const platform of list.platforms as unknown[]) {
      const probe = await api.clGetDeviceIDs!(platform, CL.DEVICE_TYPE_ALL, 0, null);
      if (probe.ret === CL.SUCCESS && Number(probe.outs.num_devices) > 0) return null;
    }
    return options.firstPlatformOnly ? 'the first OpenCL platform has no device' : `none of the ${count} OpenCL platform(s) has a device`;
  } catch (error) {
    return `the OpenCL platform query failed (${(error as Error).message})`;
  } finally {
    await native.close();
  }
}
