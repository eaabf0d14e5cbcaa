/**
 * OpenCL on the installed platform (PoCL here; `--platform <substring>` picks another, e.g. NVIDIA on the GPU
 * machine), two benchmarks in one run:
 *
 * - opencl-workloads: the wall time of each workload of fixtures/opencl (default sizes), natively (openNativeApi)
 *   vs through the guestlib over the local channel; median of 5 runs each after a warm-up run, native and guestlib
 *   runs alternating; ratio guestlib / native.
 * - opencl-query: a cheap query, clGetDeviceInfo(CL_DEVICE_MAX_COMPUTE_UNITS), per call: the raw koffi call with
 *   pre-made buffers (baseline), the spec-driven direct native binding, and the guestlib over the local channel.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { OPENCL_WORKLOADS, openclWorkloadContext } from '../fixtures/opencl/index.js';
import type { WorkloadResult } from '../fixtures/opencl/index.js';
import { CL } from '../src/apis/opencl/constants.js';
import { openclSpec } from '../src/apis/opencl/spec.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Guestlib } from '../src/guest/open.js';
import { LocalChannel } from '../src/transport/local.js';
import { openNativeApi } from '../src/worker/native-api.js';
import type { BenchRow } from './harness.js';
import { measure, report, rows } from './harness.js';

/** `--platform <substring>` or `--platform=<substring>` from the command line. */
function platformArg(argv: readonly string[] = process.argv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--platform') return argv[i + 1];
    if (argv[i]!.startsWith('--platform=')) return argv[i]!.slice('--platform='.length);
  }
  return undefined;
}

/** A guestlib over the local channel, whatever AVA_CHANNEL says. */
async function openLocalGuestlib(): Promise<Guestlib> {
  return openGuestlib(openclSpec, { channel: await LocalChannel.open({ spec: openclSpec }) });
}

/** Median of a list of numbers. */
function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Nanoseconds `body` takes. */
async function timed(body: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - t0);
}

async function workloads(platform: string | undefined, runs = 5): Promise<void> {
  await using native = await openNativeApi(openclSpec);
  await using guest = await openLocalGuestlib();
  const table: BenchRow[] = [];
  const checks: Record<string, { native: boolean; guestlib: boolean; identical: boolean; size: number; iterations: number }> = {};
  let device = '';
  for (const w of Object.values(OPENCL_WORKLOADS)) {
    const runNative = (): Promise<WorkloadResult> => w.run(native.api, native.handleAt, { platform });
    const runGuest = (): Promise<WorkloadResult> => w.run(guest.api, guest.handleAt, { platform });
    // One warm-up run each (program build caches, CPU references), then native and guestlib runs alternate so that
    // drift in the machine's load hits both alike.
    const n = await runNative();
    const g = await runGuest();
    const nativeNs: number[] = [];
    const guestNs: number[] = [];
    for (let r = 0; r < runs; r++) {
      nativeNs.push(await timed(runNative));
      guestNs.push(await timed(runGuest));
    }
    device = `${n.deviceName} [${n.platformName}]`;
    checks[w.name] = { native: n.ok, guestlib: g.ok, identical: n.summary.checksum === g.summary.checksum, size: n.size, iterations: n.iterations };
    if (!n.ok || !g.ok) console.warn(`  ! ${w.name} did not match its reference: ${[...n.failures, ...g.failures].join('; ')}`);
    const [nn, gg] = [median(nativeNs), median(guestNs)];
    table.push({ name: `${w.name}: native`, nsPerOp: nn, ratio: 1, ops: 1 });
    table.push({ name: `${w.name}: guestlib local`, nsPerOp: gg, ratio: gg / nn, ops: 1 });
  }
  report('opencl-workloads', `OpenCL workloads on ${device}: wall time per run (median of ${runs}, alternating), guestlib (local) / native`, table, { device, checks, runs });
}

async function query(platform: string | undefined): Promise<void> {
  const ops = 200_000;
  await using native = await openNativeApi(openclSpec);
  const nctx = await openclWorkloadContext(native.api, native.handleAt, { platform });
  await using guest = await openLocalGuestlib();
  const gctx = await openclWorkloadContext(guest.api, guest.handleAt, { platform });
  try {
    // Raw koffi, pre-made buffers; natively a handle's id is its pointer.
    const lib = koffi.load(native.library.path);
    const info = lib.func('clGetDeviceInfo', 'int32_t', ['uintptr_t', 'uint32_t', 'size_t', 'void *', 'void *']);
    const value = Buffer.alloc(4);
    const sizeRet = Buffer.alloc(8);
    const rawDevice = nctx.device.id;
    const raw = await measure(ops, () => {
      for (let i = 0; i < ops; i++) info(rawDevice, CL.DEVICE_MAX_COMPUTE_UNITS, 4, value, sizeRet);
    });
    const units = value.readUInt32LE(0);

    const out = new Uint32Array(1);
    const binding = await measure(ops / 4, async () => {
      for (let i = 0; i < ops / 4; i++) await native.api.clGetDeviceInfo!(nctx.device, CL.DEVICE_MAX_COMPUTE_UNITS, 4, out);
    });
    const bindingUnits = out[0];
    out[0] = 0;
    const local = await measure(ops / 4, async () => {
      for (let i = 0; i < ops / 4; i++) await guest.api.clGetDeviceInfo!(gctx.device, CL.DEVICE_MAX_COMPUTE_UNITS, 4, out);
    });
    if (bindingUnits !== units || out[0] !== units) throw new Error(`compute units differ: raw ${units}, binding ${bindingUnits}, guestlib ${out[0]}`);

    report('opencl-query', `OpenCL cheap query (clGetDeviceInfo CL_DEVICE_MAX_COMPUTE_UNITS = ${units}) on ${nctx.deviceName}, per call`, rows([
      { name: 'native: raw koffi call (baseline)', nsPerOp: raw, ops },
      { name: 'native: spec-driven binding (openNativeApi)', nsPerOp: binding, ops: ops / 4 },
      { name: 'guestlib: local channel', nsPerOp: local, ops: ops / 4 },
    ]), { device: `${nctx.deviceName} [${nctx.platformName}]` });
  } finally {
    await gctx.release();
    await nctx.release();
  }
}

/** Runs both benchmarks. */
export async function run(): Promise<void> {
  const platform = platformArg();
  await workloads(platform);
  await query(platform);
}

const invoked = process.argv[1] !== undefined && (() => {
  try {
    return realpathSync(process.argv[1]!) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invoked) await run();
