/**
 * The built-in toyacc demo workload: a small, deterministic program (devices, a context, a queue, a program with
 * four kernels, buffers, writes, launches, reads, releases) written once against the API-object calling
 * convention, so that it runs the same natively, through the guestlib, and on the TypeScript model.
 */
import type { ApiObject } from '../../guest/call-shape.js';
import type { Handle } from '../../guest/handle.js';
import { TQ } from '../../../fixtures/toyacc/constants.js';

/** Options of {@link runToyaccDemo}. */
export interface ToyaccDemoOptions {
  /** Elements per buffer. @defaultValue 4096 */
  readonly elements?: number;
  /** Rounds of axpy + scale. @defaultValue 3 */
  readonly rounds?: number;
}

/** What the demo computed. */
export interface ToyaccDemoResult {
  readonly devices: readonly string[];
  readonly elements: number;
  readonly rounds: number;
  /** FNV-1a checksum of the final y buffer, computed on the device. */
  readonly checksum: number;
  /** The first values of y. */
  readonly head: readonly number[];
  /** Sum of y, computed on the host from the bytes read back. */
  readonly sum: number;
}

const f32 = (v: number): Uint8Array => new Uint8Array(new Float32Array([v]).buffer);

/**
 * Runs the demo on an API object in `throw` status mode (guestlib, native binding, or a model).
 * @example
 * await using lib = await openGuestlib(toyaccSpec);
 * console.log(await runToyaccDemo(lib.api));
 */
export async function runToyaccDemo(api: ApiObject, options: ToyaccDemoOptions = {}): Promise<ToyaccDemoResult> {
  const n = options.elements ?? 4096;
  const rounds = options.rounds ?? 3;
  const { outs: found } = await api.tq_get_devices!(2, true);
  const devices = found.devices as Handle[];
  const names: string[] = [];
  for (const device of devices) {
    const value = new Uint8Array(32);
    const { outs } = await api.tq_get_device_info!(device, TQ.DEVICE_NAME, value.byteLength, value);
    names.push(Buffer.from(value.subarray(0, Number(outs.size_ret) - 1)).toString('latin1'));
  }
  const { ret: context } = await api.tq_create_context!(devices.length, devices);
  const { ret: queue } = await api.tq_create_queue!(context, devices[devices.length - 1]);
  const { ret: program } = await api.tq_create_program!(context, 'fill axpy\nscale; checksum');
  await api.tq_build_program!(program, '-O2');
  const kernel = async (name: string): Promise<Handle> => (await api.tq_create_kernel!(program, name)).ret as Handle;
  const [fill, axpy, scale, checksum] = [await kernel('fill'), await kernel('axpy'), await kernel('scale'), await kernel('checksum')];
  const yInit = new Float32Array(n).map((_, i) => i * 0.25);
  const { ret: x } = await api.tq_create_buffer!(context, 0, 4 * n, null);
  const { ret: y } = await api.tq_create_buffer!(context, TQ.MEM_COPY_HOST, 4 * n, new Uint8Array(yInit.buffer));
  const { ret: sum } = await api.tq_create_buffer!(context, 0, 4, null);
  await api.tq_set_kernel_arg!(fill, 0, 8, x);
  await api.tq_set_kernel_arg!(fill, 1, 4, f32(1.5));
  await api.tq_enqueue_kernel!(queue, fill, n);
  await api.tq_set_kernel_arg!(axpy, 0, 4, f32(2));
  await api.tq_set_kernel_arg!(axpy, 1, 8, x);
  await api.tq_set_kernel_arg!(axpy, 2, 8, y);
  await api.tq_set_kernel_arg!(scale, 0, 8, y);
  await api.tq_set_kernel_arg!(scale, 1, 4, f32(0.5));
  for (let r = 0; r < rounds; r++) {
    await api.tq_enqueue_kernel!(queue, axpy, n);
    await api.tq_enqueue_kernel!(queue, scale, n);
  }
  await api.tq_set_kernel_arg!(checksum, 0, 8, y);
  await api.tq_set_kernel_arg!(checksum, 1, 8, sum);
  await api.tq_enqueue_kernel!(queue, checksum, n);
  await api.tq_finish!(queue);
  const yOut = new Float32Array(n);
  await api.tq_enqueue_read!(queue, y, 0, 4 * n, yOut);
  const digest = new Uint32Array(1);
  await api.tq_enqueue_read!(queue, sum, 0, 4, digest);
  for (const k of [fill, axpy, scale, checksum]) await api.tq_release_kernel!(k);
  for (const b of [x, y, sum]) await api.tq_release_buffer!(b);
  await api.tq_release_program!(program);
  await api.tq_release_queue!(queue);
  await api.tq_release_context!(context);
  return {
    devices: names,
    elements: n,
    rounds,
    checksum: digest[0]!,
    head: Array.from(yOut.subarray(0, 4)),
    sum: yOut.reduce((acc, v) => acc + v, 0),
  };
}
