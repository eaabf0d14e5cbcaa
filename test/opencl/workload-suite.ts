/**
 * The OpenCL workloads (fixtures/opencl) run natively and through a guestlib opened by the caller, for one channel:
 * both runs must match the CPU reference within the workload's tolerance and give the same output. The workloads
 * are deterministic by construction (integer atomics only, reductions in a fixed order, no float contraction where
 * the reference is exact), so on one device the two outputs must be identical, bit for bit; the tolerance check runs
 * first so that a difference is reported with its size.
 *
 * Used by test/opencl/workloads-<channel>.test.ts, e.g.
 *   if (await requireOpenCL()) workloadSuite('local', (spec) => openGuestlib(spec));
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bitwiseEqual, maxMixedError, mixedError, OPENCL_WORKLOADS } from '../../fixtures/opencl/index.js';
import type { HandleAt, WorkloadOptions, WorkloadResult } from '../../fixtures/opencl/index.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import type { ApiSpec } from '../../src/spec/types.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import type { NativeApi } from '../../src/worker/native-api.js';

/** What `open` must give: an API object in the guestlib calling convention (a `session` is checked when present). */
export interface OpenedApi {
  readonly api: ApiObject;
  handleAt: HandleAt;
  close(): Promise<void>;
  readonly session?: { readonly callCount: number };
}

function checkAgainstReference(r: WorkloadResult, label: string): void {
  assert.ok(r.ok, `${r.name} (${label}) does not match its CPU reference: ${r.failures.join('; ')}`);
  assert.ok(r.maxError <= r.tolerance, `${r.name} (${label}): max error ${r.maxError} > tolerance ${r.tolerance}`);
  assert.ok(r.output.length > 0 && r.summary.length === r.output.length, `${r.name} (${label}): empty output`);
}

/**
 * Registers and runs one uvu suite: for every workload of {@link OPENCL_WORKLOADS}, a native run and a run through
 * `open(openclSpec)`, compared with the CPU reference and with each other.
 */
export function workloadSuite(channelName: string, open: (spec: ApiSpec) => Promise<OpenedApi>, options: WorkloadOptions = {}): void {
  const s = suite(`OpenCL workloads: native vs guestlib over the ${channelName} channel`);
  let native: NativeApi | undefined;
  let remote: OpenedApi | undefined;
  s.before(async () => {
    native = await openNativeApi(openclSpec);
    remote = await open(openclSpec);
  });
  s.after(async () => {
    await remote?.close();
    await native?.close();
  });

  for (const workload of Object.values(OPENCL_WORKLOADS)) {
    s(`${workload.name}: native and ${channelName} match the CPU reference and each other`, async () => {
      const direct = await workload.run(native!.api, native!.handleAt, options);
      const callsBefore = remote!.session?.callCount;
      const remoted = await workload.run(remote!.api, remote!.handleAt, options);
      if (callsBefore !== undefined) {
        assert.ok(remote!.session!.callCount > callsBefore, `the ${channelName} run sent no call through its session`);
      }
      checkAgainstReference(direct, 'native');
      checkAgainstReference(remoted, channelName);
      assert.is(remoted.platformName, direct.platformName);
      assert.is(remoted.deviceName, direct.deviceName);
      assert.is(remoted.size, direct.size);
      assert.is(remoted.iterations, direct.iterations);
      assert.is(remoted.output.constructor, direct.output.constructor, 'output types differ');
      assert.is(remoted.output.length, direct.output.length, 'output lengths differ');

      if (direct.output instanceof Uint32Array) {
        // Integer outputs: bitwise.
        assert.ok(bitwiseEqual(remoted.output, direct.output), `${workload.name}: the ${channelName} output differs from the native one`);
        assert.equal(remoted.summary, direct.summary);
      } else {
        // Float outputs: within the tolerance, every element and every summary number...
        const diff = maxMixedError(remoted.output, direct.output as Float32Array);
        assert.ok(diff <= workload.tolerance, `${workload.name}: ${channelName} vs native differ by ${diff} > ${workload.tolerance}`);
        for (const [key, value] of Object.entries(direct.summary)) {
          if (key === 'checksum') continue;
          const other = remoted.summary[key];
          assert.type(other, 'number', `summary.${key} missing from the ${channelName} run`);
          assert.ok(mixedError(other!, value) <= workload.tolerance * Math.max(1, key === 'sum' ? direct.summary.length : 1),
            `summary.${key}: ${channelName} ${other} vs native ${value}`);
        }
        // ...and, the same device running the same deterministic kernels, identical.
        assert.ok(bitwiseEqual(remoted.output, direct.output), `${workload.name}: the ${channelName} output is not bitwise identical to the native one`);
        assert.equal(remoted.summary, direct.summary);
      }
    });
  }
  s.run();
}
