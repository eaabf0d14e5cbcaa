/**
 * The shm transport: (a) the floor, a raw SharedArrayBuffer ping-pong between the main thread and a worker thread
 * with the same spin-then-`Atomics.waitAsync` strategy and the same event-loop turn per message as the ring reader;
 * (b) the round trip of a cheap toyacc query (tq_get_device_info) through the guestlib over shm; (c) batched
 * asynchronous calls (tq_set_kernel_arg posted, then one waiting call) in calls/s, with the guest's own share.
 *
 * Targets (issue): shm round trip <= 2x (a); batched asynchronous calls >= 1,000,000/s.
 * This module is also the entry of the ping-pong's echo thread (see the bottom), whichever benchmark calls
 * {@link pingPong} (bench/icd.ts does too).
 */
import { isMainThread, workerData } from 'node:worker_threads';
import type { Worker as NodeWorker } from 'node:worker_threads';
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import { nullChannel } from './null-channel.js';
import { Handle } from '../src/guest/handle.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Guestlib } from '../src/guest/open.js';
import type { FrameLink } from '../src/transport/link.js';
import { RemoteChannel } from '../src/transport/remote.js';
import { openShmChannel, startModuleThread } from '../src/transport/shm.js';
import { DEFAULT_SPIN_MICROS, DEFAULT_WAKE_SPIN_MICROS, Waiter, wake } from '../src/transport/shm-ring.js';
import { encodeBody } from '../src/wire/codec.js';
import type { Frame } from '../src/wire/frames.js';
import { measure, report, rows } from './harness.js';

/** Words of the ping-pong buffer (each side's on its own line, as in the ring). */
const PING = 0;
const ECHO_WAITING = 1;
const PONG = 16;
const MAIN_WAITING = 17;
const ECHO_BELL = 32;
const MAIN_BELL = 48;
const STOP = -1;

interface EchoData {
  readonly kind: 'ava-bench-shm-echo';
  readonly sab: SharedArrayBuffer;
  readonly mode: 'strategy' | 'busy';
  readonly spinMicros: number;
  readonly wakeSpinMicros: number;
}

/** The echo thread: answers each PING with the same value in PONG. */
function echo(data: EchoData): void {
  const i32 = new Int32Array(data.sab);
  if (data.mode === 'busy') {
    // Pure busy-wait on both sides, no event loop: the hardware floor, for reference only.
    for (let seen = 0; ;) {
      let v: number;
      while ((v = Atomics.load(i32, PING)) === seen);
      if (v === STOP) return;
      seen = v;
      Atomics.store(i32, PONG, v);
    }
  }
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const waiter = new Waiter(i32, ECHO_WAITING, ECHO_BELL, data.spinMicros, 'tight');
  let seen = 0;
  const ready = (): boolean => Atomics.load(i32, PING) !== seen;
  const tick = (): void => {
    for (;;) {
      const v = Atomics.load(i32, PING);
      if (v !== seen) {
        seen = v;
        if (v === STOP) {
          clearInterval(keepAlive);
          return;
        }
        Atomics.store(i32, PONG, v);
        waiter.expect(wake(i32, MAIN_WAITING, MAIN_BELL) ? data.wakeSpinMicros : 0);
        setImmediate(tick);
        return;
      }
      if (!waiter.wait(ready, tick)) return;
    }
  };
  tick();
}

function startEcho(mode: EchoData['mode'], spinMicros: number): { i32: Int32Array; thread: NodeWorker } {
  const sab = new SharedArrayBuffer(256);
  const data: EchoData = { kind: 'ava-bench-shm-echo', sab, mode, spinMicros, wakeSpinMicros: DEFAULT_WAKE_SPIN_MICROS };
  const thread = startModuleThread(new URL(import.meta.url), { workerData: data });
  return { i32: new Int32Array(sab), thread };
}

async function stopEcho(echoThread: { i32: Int32Array; thread: NodeWorker }): Promise<void> {
  const exited = new Promise((r) => echoThread.thread.once('exit', r));
  Atomics.store(echoThread.i32, PING, STOP);
  Atomics.add(echoThread.i32, ECHO_BELL, 1);
  Atomics.notify(echoThread.i32, ECHO_BELL);
  await exited;
}

/**
 * (a) The shm floor: `ops` round trips of a raw SharedArrayBuffer ping-pong between this thread and an echo thread
 * (started here, on this module, and stopped before it returns), both with the ring reader's strategy: deliver,
 * yield an event-loop turn, spin `spinMicros`, then sleep; the spin is `tight` (nothing else runs on these threads,
 * so holding the event loop costs nothing here): the best case. Also the floor that bench/icd.ts compares against.
 * @returns ns per round trip.
 */
export async function pingPong(ops: number, spinMicros: number): Promise<number> {
  const e = startEcho('strategy', spinMicros);
  const { i32 } = e;
  const waiter = new Waiter(i32, MAIN_WAITING, MAIN_BELL, spinMicros, 'tight');
  let seen = 0;
  let deliver: ((v: number) => void) | undefined;
  const ready = (): boolean => Atomics.load(i32, PONG) !== seen;
  let stopped = false;
  const tick = (): void => {
    for (;;) {
      if (stopped) return;
      const v = Atomics.load(i32, PONG);
      if (v !== seen) {
        seen = v;
        deliver?.(v);
        setImmediate(tick);
        return;
      }
      if (!waiter.wait(ready, tick)) return;
    }
  };
  setImmediate(tick);
  let next = 1;
  const ping = (): Promise<number> => new Promise<number>((resolve) => {
    deliver = resolve;
    Atomics.store(i32, PING, next++);
    waiter.expect(wake(i32, ECHO_WAITING, ECHO_BELL) ? DEFAULT_WAKE_SPIN_MICROS : 0);
  });
  const ns = await measure(ops, async () => {
    for (let i = 0; i < ops; i++) await ping();
  });
  stopped = true;
  Atomics.add(i32, MAIN_BELL, 1);
  Atomics.notify(i32, MAIN_BELL);
  await stopEcho(e);
  return ns;
}

/** For reference: both sides busy-wait synchronously (no event loop, no promises). */
async function busyPingPong(ops: number): Promise<number> {
  const e = startEcho('busy', 0);
  const { i32 } = e;
  let next = 1;
  const ns = await measure(ops, () => {
    for (let i = 0; i < ops; i++) {
      const v = next++;
      Atomics.store(i32, PING, v);
      while (Atomics.load(i32, PONG) !== v);
    }
  });
  await stopEcho(e);
  return ns;
}


/** A frame link that welcomes the hello, encodes every frame it is given (the codec's share) and answers calls. */
function encodingLink(): FrameLink {
  let onFrame: ((f: Frame) => void) | undefined;
  return {
    send(frame) {
      encodeBody(frame);
      if (frame.t === 'hello') queueMicrotask(() => onFrame?.({ t: 'welcome', v: frame.v, worker: 'null', session: frame.session }));
      else if (frame.t === 'call') queueMicrotask(() => onFrame?.({ t: 'reply', seq: frame.seq, ret: TQ.SUCCESS, outs: {} }));
      else if (frame.t === 'control') queueMicrotask(() => onFrame?.({ t: 'controlReply', id: frame.id }));
    },
    onFrame(l) { onFrame = l; },
    onClose() {},
    close() {},
  };
}

async function kernelOf(lib: Guestlib): Promise<Handle> {
  const api = lib.api;
  const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
  const context = (await api.tq_create_context!(1, devices)).ret as Handle;
  const program = (await api.tq_create_program!(context, 'fill')).ret as Handle;
  await api.tq_build_program!(program, '');
  return (await api.tq_create_kernel!(program, 'fill')).ret as Handle;
}

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const spin = DEFAULT_SPIN_MICROS;
  const rttOps = 20_000;

  const raw = await pingPong(rttOps, spin);
  const busy = await busyPingPong(rttOps * 10);

  const shm = await openGuestlib(toyaccSpec, { channel: await openShmChannel({ spec: toyaccSpec, sessionId: 'bench-rtt' }) });
  const dev = ((await shm.api.tq_get_devices!(1, true)).outs.devices as Handle[])[0];
  const out = new Uint8Array(4);
  const shmRtt = await measure(rttOps, async () => {
    for (let i = 0; i < rttOps; i++) await shm.api.tq_get_device_info!(dev, TQ.DEVICE_UNITS, 4, out);
  });

  // The transport alone: a control frame answered by the worker thread (codec + rings + handlers, no API call).
  const channel = shm.session.channel as RemoteChannel;
  const ping = await measure(rttOps, async () => {
    for (let i = 0; i < rttOps; i++) await channel.barrier();
  });

  const local = await openGuestlib(toyaccSpec);
  const lDev = ((await local.api.tq_get_devices!(1, true)).outs.devices as Handle[])[0];
  const localRtt = await measure(rttOps, async () => {
    for (let i = 0; i < rttOps; i++) await local.api.tq_get_device_info!(lDev, TQ.DEVICE_UNITS, 4, out);
  });

  report('shm-rtt', 'shm round trip: raw SAB ping-pong vs a cheap toyacc query (tq_get_device_info) through the guestlib', rows([
    { name: 'raw SAB ping-pong, spin-then-wait (floor)', nsPerOp: raw, ops: rttOps },
    { name: 'raw SAB ping-pong, busy-wait, no event loop', nsPerOp: busy, ops: rttOps * 10 },
    { name: 'control-frame ping over shm (no API call)', nsPerOp: ping, ops: rttOps },
    { name: 'guestlib over shm', nsPerOp: shmRtt, ops: rttOps },
    { name: 'guestlib over the local channel (same thread)', nsPerOp: localRtt, ops: rttOps },
  ]), { target: 'guestlib over shm <= 2x the spin-then-wait ping-pong', spinMicros: spin, shmOverFloor: shmRtt / raw, pingOverFloor: ping / raw });

  // (c) Throughput: tq_set_kernel_arg posted in batches (the session's 512), then one waiting call.
  const calls = 200_000;
  const sKernel = await kernelOf(shm);
  const setArg = async (lib: Guestlib, kernel: Handle): Promise<void> => {
    const value = new Uint8Array(4);
    const api = lib.api;
    for (let i = 0; i < calls; i++) void api.tq_set_kernel_arg!(kernel, 1, 4, value);
    await api.tq_get_device_info!(dev, TQ.DEVICE_UNITS, 4, out);
  };
  const shmPost = await measure(calls, () => setArg(shm, sKernel), 5);

  const guestOnly = await openGuestlib(toyaccSpec, { channel: nullChannel(), asyncCalls: true });
  const fakeKernel = new Handle('kernel', 1);
  const guestPost = await measure(calls, async () => {
    const value = new Uint8Array(4);
    for (let i = 0; i < calls; i++) void guestOnly.api.tq_set_kernel_arg!(fakeKernel, 1, 4, value);
    await guestOnly.api.tq_get_device_info!(new Handle('device', 1), TQ.DEVICE_UNITS, 4, out);
  }, 5);

  const encoding = await openGuestlib(toyaccSpec, {
    channel: await RemoteChannel.open({ kind: 'shm', link: encodingLink(), spec: toyaccSpec, sessionId: 'bench-encode' }),
  });
  const encodePost = await measure(calls, async () => {
    const value = new Uint8Array(4);
    for (let i = 0; i < calls; i++) void encoding.api.tq_set_kernel_arg!(fakeKernel, 1, 4, value);
    await encoding.api.tq_get_device_info!(new Handle('device', 1), TQ.DEVICE_UNITS, 4, out);
  }, 5);

  const localAsync = await openGuestlib(toyaccSpec, { asyncCalls: true });
  const lKernel = await kernelOf(localAsync);
  const localPost = await measure(calls, () => setArg(localAsync, lKernel), 5);

  const perSecond = (ns: number): number => Math.round(1e9 / ns);
  report('shm-throughput', `batched asynchronous calls (${calls} tq_set_kernel_arg posted, then one waiting call), per call`, rows([
    { name: 'guest only: proxy + session.post, null channel', nsPerOp: guestPost, ops: calls },
    { name: 'guest + RemoteChannel + CBOR encode, null link', nsPerOp: encodePost, ops: calls },
    { name: 'shm end to end (worker thread executes)', nsPerOp: shmPost, ops: calls },
    { name: 'local channel, asyncCalls on (one thread)', nsPerOp: localPost, ops: calls },
  ]), {
    target: '>= 1,000,000 calls/s on shm',
    callsPerSecond: { guestOnly: perSecond(guestPost), guestAndEncode: perSecond(encodePost), shm: perSecond(shmPost), local: perSecond(localPost) },
  });
  console.log(`  shm: ${perSecond(shmPost).toLocaleString('en-US')} calls/s; guest alone: ${perSecond(guestPost).toLocaleString('en-US')} calls/s; ` +
    `guest + encode: ${perSecond(encodePost).toLocaleString('en-US')} calls/s`);

  await Promise.all([shm.close(), local.close(), guestOnly.close(), encoding.close(), localAsync.close()]);
}

const data = workerData as EchoData | undefined;
if (!isMainThread && data?.kind === 'ava-bench-shm-echo') echo(data);
