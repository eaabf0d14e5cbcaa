/**
 * A cheap toyacc query (tq_get_device_info of a uint32), per call: the raw koffi call with pre-made buffers
 * (baseline), the spec-driven direct native binding, and the guestlib over the local channel.
 */
import koffi from 'koffi';
import { buildToyacc } from '../fixtures/toyacc/build.js';
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Handle } from '../src/guest/handle.js';
import { openNativeApi } from '../src/worker/native-api.js';
import { measure, report, rows } from './harness.js';

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const ops = 200_000;
  const lib = koffi.load(await buildToyacc());
  const getDevices = lib.func('tq_get_devices', 'int32_t', ['uint32_t', 'void *', 'void *']);
  const info = lib.func('tq_get_device_info', 'int32_t', ['uintptr_t', 'uint32_t', 'size_t', 'void *', 'void *']);
  const devs = Buffer.alloc(16);
  getDevices(2, devs, null);
  const device = Number(devs.readBigUInt64LE(0));
  const value = Buffer.alloc(4);
  const sizeRet = Buffer.alloc(8);
  const raw = await measure(ops, () => {
    for (let i = 0; i < ops; i++) info(device, TQ.DEVICE_UNITS, 4, value, sizeRet);
  });

  await using native = await openNativeApi(toyaccSpec);
  const nDev = ((await native.api.tq_get_devices!(1, true)).outs.devices as Handle[])[0];
  const out = new Uint8Array(4);
  const binding = await measure(ops / 4, async () => {
    for (let i = 0; i < ops / 4; i++) await native.api.tq_get_device_info!(nDev, TQ.DEVICE_UNITS, 4, out);
  });

  await using guest = await openGuestlib(toyaccSpec);
  const gDev = ((await guest.api.tq_get_devices!(1, true)).outs.devices as Handle[])[0];
  const local = await measure(ops / 4, async () => {
    for (let i = 0; i < ops / 4; i++) await guest.api.tq_get_device_info!(gDev, TQ.DEVICE_UNITS, 4, out);
  });

  report('toyacc-query', 'toyacc cheap query (tq_get_device_info, uint32), per call', rows([
    { name: 'native: raw koffi call (baseline)', nsPerOp: raw, ops },
    { name: 'native: spec-driven binding (openNativeApi)', nsPerOp: binding, ops: ops / 4 },
    { name: 'guestlib: local channel', nsPerOp: local, ops: ops / 4 },
  ]));
}
