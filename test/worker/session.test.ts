/**
 * WorkerSession on the real toyacc library through a real Worker: malformed call frames, isolation of sessions,
 * explicit state, and clean-up of what a guest leaves alive.
 *
 * node --import tsx test/worker/session.test.ts
 */
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { LocalChannel } from '../../src/transport/local.js';
import type { CallFrame, ReplyFrame, WireValue } from '../../src/wire/frames.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import type { WorkerSession } from '../../src/worker/session.js';
import { Worker } from '../../src/worker/worker.js';


const worker = await Worker.open({ spec: toyaccSpec });
const liveObjects = (): number => worker.library.get('tq_debug_live_objects')() as number;

const DEMO = { elements: 1024, rounds: 3 } as const;
const native = await openNativeApi(toyaccSpec);
const nativeDemo: ToyaccDemoResult = await runToyaccDemo(native.api, DEMO);

let seq = 1;
function send(session: WorkerSession, fn: unknown, args: unknown, retId: unknown = null): Promise<ReplyFrame> {
  return session.execute({ seq: seq++, fn, args, retId } as unknown as CallFrame);
}

async function ok(session: WorkerSession, fn: string, args: WireValue[], retId: number | null = null): Promise<ReplyFrame> {
  const reply = await send(session, fn, args, retId);
  assert.is(reply.error, undefined, `${fn}: ${reply.error?.message}`);
  const f = toyaccSpec.fn.get(fn)!;
  if (f.returns.role === 'status') assert.is(reply.ret, TQ.SUCCESS, `${fn} status`);
  if (f.returns.role === 'handle') assert.is(reply.ret, retId, `${fn} bound the proposed id`);
  if (f.args.some((a) => a.role === 'errcode')) assert.is(reply.outs?.errcode_ret, TQ.SUCCESS, `${fn} errcode`);
  return reply;
}

/** Devices 1001/1002, context 1003 on device 1001, queue 1004, buffer 1005 (16 bytes), program 1006 (built), kernel 1007. */
async function setUp(session: WorkerSession): Promise<void> {
  await ok(session, 'tq_get_devices', [2, [1001, 1002], true]);
  await ok(session, 'tq_create_context', [1, [1001], true], 1003);
  await ok(session, 'tq_create_queue', [1003, 1001, true], 1004);
  await ok(session, 'tq_create_buffer', [1003, 0, 16, null, true], 1005);
  await ok(session, 'tq_create_program', [1003, 'fill axpy', true], 1006);
  await ok(session, 'tq_build_program', [1006, null]);
  await ok(session, 'tq_create_kernel', [1006, 'fill', true], 1007);
}

// ------------------------------------------------------------------------------------------ malformed frames

const channel = await LocalChannel.open({ spec: toyaccSpec, worker });
const bad = channel.session;
await setUp(bad);
const liveBeforeMalformed = liveObjects();

async function expectError(code: string, fn: unknown, args: unknown, retId: unknown = null): Promise<ReplyFrame> {
  const frameSeq = seq;
  const reply = await send(bad, fn, args, retId);
  assert.is(reply.seq, frameSeq, 'the reply answers the frame');
  assert.ok(reply.error, `no error for ${String(fn)}: ${JSON.stringify(reply, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  assert.is(reply.error!.code, code, reply.error!.message);
  assert.is(reply.ret, undefined);
  return reply;
}

test('malformed: unknown function', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_launch_missiles', []);
  await expectError('ERR_AVA_BAD_CALL', 42, []);
  await expectError('ERR_AVA_BAD_CALL', 'toString', []);
});

test('malformed: wrong argument count, or args not an array', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_finish', []);
  await expectError('ERR_AVA_BAD_CALL', 'tq_finish', [1004, 1004]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_finish', { 0: 1004, length: 1 });
  await expectError('ERR_AVA_BAD_CALL', 'tq_finish', null);
});

test('malformed: a string, float, NaN or boolean-free object where a number is expected', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, '0', 16, null, true], 2001);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 0, 1.5, null, true], 2002);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 0, Number.NaN, null, true], 2003);
  await expectError('ERR_AVA_BAD_CALL', 'tq_enqueue_kernel', [1004, 1007, { n: 4 }]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_get_devices', ['2', [2004, 2005], true]);
});

test('malformed: a bigint for a uint32', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 1n, 16, new Uint8Array(16), true], 2006);
  await expectError('ERR_AVA_BAD_CALL', 'tq_set_kernel_arg', [1007, 0n, 8, { handle: 1005 }]);
});

test('malformed: bytes shorter than the length expression, or not bytes at all', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_enqueue_write', [1004, 1005, 0, 16, new Uint8Array(4)]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_enqueue_write', [1004, 1005, 0, 4, [1, 2, 3, 4]]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_enqueue_write', [1004, 1005, 0, 4, 'abcd']);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, TQ.MEM_COPY_HOST, 64, new Uint8Array(63), true], 2007);
});

test('malformed: kernel argument bytes shorter than the size the library reads', async () => {
  // tq_set_kernel_arg reads `size` bytes from value: 4 bytes for an 8-byte buffer argument, or 1 byte for a
  // 4-byte float, would be read past the end of the frame's bytes.
  await expectError('ERR_AVA_BAD_CALL', 'tq_set_kernel_arg', [1007, 0, 8, new Uint8Array(4)]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_set_kernel_arg', [1007, 1, 4, new Uint8Array(1)]);
});

test('malformed: other shapes (array too short for a count, not a string, huge sizes, bad kernel value)', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_context', [2, [1001], true], 2008);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_program', [1003, 42, true], 2009);
  await expectError('ERR_AVA_BAD_CALL', 'tq_get_device_info', [1001, TQ.DEVICE_NAME, 2 ** 40, true, true]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_get_device_info', [1001, TQ.DEVICE_NAME, -8, true, true]);
  await expectError('ERR_AVA_BAD_CALL', 'tq_set_kernel_arg', [1007, 0, 8, { buffer: 1005 }]);
});

test('malformed: a handle id that was never issued', async () => {
  const reply = await expectError('ERR_AVA_UNKNOWN_HANDLE', 'tq_finish', [999]);
  assert.is(reply.error!.details?.status, TQ.INVALID_QUEUE);
  await expectError('ERR_AVA_UNKNOWN_HANDLE', 'tq_enqueue_read', [1004, 4242, 0, 4, true]);
  await expectError('ERR_AVA_UNKNOWN_HANDLE', 'tq_finish', ['1004']);
  await expectError('ERR_AVA_UNKNOWN_HANDLE', 'tq_create_context', [1, [77], true], 2010);
  await expectError('ERR_AVA_UNKNOWN_HANDLE', 'tq_set_kernel_arg', [1007, 0, 8, { handle: 4242 }]);
});

test('malformed: a handle of another kind', async () => {
  const reply = await expectError('ERR_AVA_HANDLE_KIND', 'tq_finish', [1005]);
  assert.is(reply.error!.details?.status, TQ.INVALID_QUEUE);
});

test('malformed: a negative, zero, fractional or duplicate proposed id', async () => {
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_context', [1, [1001], true], -5);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_context', [1, [1001], true], 0);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 0, 8, null, true], 2.5);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 0, 8, null, true], '2011');
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_buffer', [1003, 0, 8, null, true], 1005);
  await expectError('ERR_AVA_BAD_CALL', 'tq_create_queue', [1003, 1001, true], 1003);
  // the ids already bound are untouched
  const size = await ok(bad, 'tq_get_buffer_info', [1005, TQ.BUFFER_SIZE, 8, true, true]);
  assert.is(Buffer.from(size.outs!.value as Uint8Array).readBigUInt64LE(0), 16n);
});

test('malformed: a rejected proposed id leaves no native object behind', async () => {
  // Every create above failed, so the library must hold exactly what setUp made. A create whose id the worker
  // refuses only after the native call leaks an object the guest can never release (and session close misses).
  assert.is(liveObjects() - liveBeforeMalformed, 0);
});

test('after malformed frames the session keeps serving a healthy workload', async () => {
  const size = await ok(bad, 'tq_get_buffer_info', [1005, TQ.BUFFER_SIZE, 8, true, true]);
  assert.is(Buffer.from(size.outs!.value as Uint8Array).readBigUInt64LE(0), 16n);
  await ok(bad, 'tq_enqueue_write', [1004, 1005, 0, 4, new Uint8Array([1, 2, 3, 4])]);
  const read = await ok(bad, 'tq_enqueue_read', [1004, 1005, 0, 4, true]);
  assert.equal([...(read.outs!.dst as Uint8Array)], [1, 2, 3, 4]);
  // the demo through a guestlib on the very same worker session (the guest's ids start at 1, below setUp's)
  const lib = await openGuestlib(toyaccSpec, { channel });
  assert.equal(await runToyaccDemo(lib.api, DEMO), nativeDemo);
  await lib.close();
  assert.is((await send(bad, 'tq_finish', [1004])).error?.code, 'ERR_AVA_CLOSED', 'closing the guestlib closed the session');
});

// ------------------------------------------------------------------------------------------ repeated calls

test('posted calls sharing one args object (ava-guestd posting a front\'s repeat) each run, and a repeated release is refused once its handle is gone', async () => {
  const session = worker.openSession('repeat');
  await setUp(session);
  const floats = (...v: number[]): Uint8Array => new Uint8Array(new Float32Array(v).buffer);
  await ok(session, 'tq_create_buffer', [1003, 0, 16, null, true], 1008);
  await ok(session, 'tq_enqueue_write', [1004, 1008, 0, 16, floats(1, 1, 1, 1)]);
  await ok(session, 'tq_enqueue_write', [1004, 1005, 0, 16, floats(0, 0, 0, 0)]);
  await ok(session, 'tq_create_kernel', [1006, 'axpy', true], 1009);
  await ok(session, 'tq_set_kernel_arg', [1009, 0, 4, floats(1)]);
  await ok(session, 'tq_set_kernel_arg', [1009, 1, 8, { handle: 1008 }]);
  await ok(session, 'tq_set_kernel_arg', [1009, 2, 8, { handle: 1005 }]);
  // y += x five times: one args object for the five launches, as serve-front posts a call with repeat 4.
  const launch: WireValue[] = [1004, 1009, 4];
  const failed: ReplyFrame[] = [];
  session.post(Array.from({ length: 5 }, () => ({ seq: seq++, fn: 'tq_enqueue_kernel', args: launch, retId: null, async: true })), (_, r) => { if (r.error || r.ret !== TQ.SUCCESS) failed.push(r); });
  await ok(session, 'tq_finish', [1004]);
  assert.equal(failed, []);
  const y = await ok(session, 'tq_enqueue_read', [1004, 1005, 0, 16, true]);
  assert.equal([...new Float32Array(new Uint8Array(y.outs!.dst as Uint8Array).buffer)], [5, 5, 5, 5], 'each launch ran');
  // A release named twice with one args object: the library sees it once, the second is refused as a stale handle.
  await ok(session, 'tq_create_buffer', [1003, 0, 16, null, true], 1010);
  const live = liveObjects();
  const release: WireValue[] = [1010];
  const replies: ReplyFrame[] = [];
  session.post([0, 1].map(() => ({ seq: seq++, fn: 'tq_release_buffer', args: release, retId: null, async: true })), (_, r) => { replies.push(r); });
  await ok(session, 'tq_finish', [1004]);
  assert.is(liveObjects(), live - 1, 'one buffer freed');
  assert.is(replies.filter((r) => r.error?.code === 'ERR_AVA_STALE_HANDLE').length, 1, `the second release refused as a stale handle: ${JSON.stringify(replies)}`);
  await session.close();
});

// ------------------------------------------------------------------------------------------ isolation

test('two sessions on one worker are isolated', async () => {
  const a = worker.openSession('iso-a');
  const b = worker.openSession('iso-b');
  try {
    await ok(a, 'tq_get_devices', [2, [1, 2], true]);
    await ok(a, 'tq_create_context', [1, [1], true], 3);
    await ok(a, 'tq_create_buffer', [3, 0, 8, null, true], 4);
    // ids valid in a are unknown in b
    const r1 = await send(b, 'tq_get_context_info', [3, TQ.CONTEXT_REFCOUNT, 4, true, true]);
    assert.is(r1.error?.code, 'ERR_AVA_UNKNOWN_HANDLE');
    const r2 = await send(b, 'tq_create_queue', [3, 1, true], 5);
    assert.is(r2.error?.code, 'ERR_AVA_UNKNOWN_HANDLE');
    // b issues the same ids for its own objects
    await ok(b, 'tq_get_devices', [2, [1, 2], true]);
    await ok(b, 'tq_create_context', [1, [2], true], 3);
    await ok(b, 'tq_release_context', [3]);
    assert.is((await send(b, 'tq_release_context', [3])).error?.code, 'ERR_AVA_STALE_HANDLE');
    // a's context 3 is still alive, with its own refcount
    const rc = await ok(a, 'tq_get_context_info', [3, TQ.CONTEXT_REFCOUNT, 4, true, true]);
    assert.is(Buffer.from(rc.outs!.value as Uint8Array).readUInt32LE(0), 1);
    const devs = await ok(a, 'tq_get_context_info', [3, TQ.CONTEXT_DEVICES, 8, true, true]);
    assert.is(Buffer.from(devs.outs!.value as Uint8Array).readBigInt64LE(0), 1n, 'devices come back as a\'s ids');
    // session ids are unique on a worker
    try {
      worker.openSession('iso-a');
      assert.unreachable('a second session with the same id');
    } catch (error) {
      assert.is((error as AvaError).code, 'ERR_AVA_BAD_CALL');
    }
  } finally {
    await a.close();
    await b.close();
  }
  assert.is((await send(a, 'tq_finish', [1])).error?.code, 'ERR_AVA_CLOSED');
  assert.not.ok(worker.sessions.some((s) => s.id === 'iso-a' || s.id === 'iso-b'));
});

test('two sessions on one worker run the demo concurrently with equal results', async () => {
  const before = liveObjects();
  const open = async (): Promise<Guestlib> => openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec, worker }) });
  const [x, y] = await Promise.all([open(), open()]);
  try {
    const [rx, ry] = await Promise.all([runToyaccDemo(x.api, DEMO), runToyaccDemo(y.api, DEMO)]);
    assert.equal(rx, ry);
    assert.equal(rx, nativeDemo);
    assert.ok(x.session.callCount > 20 && x.session.callCount === y.session.callCount);
  } finally {
    await x.close();
    await y.close();
  }
  assert.is(liveObjects(), before);
});

// ------------------------------------------------------------------------------------------ explicit state

interface Opened {
  lib: Guestlib;
  session: WorkerSession;
  context: Handle;
  queue: Handle;
}

async function openOn(w: Worker): Promise<Opened> {
  const ch = await LocalChannel.open({ spec: toyaccSpec, worker: w });
  const lib = await openGuestlib(toyaccSpec, { channel: ch });
  const devices = (await lib.api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const context = (await lib.api.tq_create_context!(2, devices)).ret as Handle;
  const queue = (await lib.api.tq_create_queue!(context, devices[1])).ret as Handle;
  return { lib, session: ch.session, context, queue };
}

const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function readAll(o: Opened, buffer: Handle, n: number): Promise<number[]> {
  const dst = new Uint8Array(n);
  await o.lib.api.tq_enqueue_read!(o.queue, buffer, 0, n, dst);
  return [...dst];
}

test('explicit state: extract after writes, restore into a fresh buffer of another session and another worker', async () => {
  const src = await openOn(worker);
  const other = await Worker.open({ spec: toyaccSpec });
  const sameWorker = await openOn(worker);
  const otherWorker = await openOn(other);
  try {
    const buffer = (await src.lib.api.tq_create_buffer!(src.context, 0, 64, null)).ret as Handle;
    const expected = new Uint8Array(64);
    await src.lib.api.tq_enqueue_write!(src.queue, buffer, 0, 32, pattern(32, 7));
    expected.set(pattern(32, 7), 0);
    await src.lib.api.tq_enqueue_write!(src.queue, buffer, 40, 16, pattern(16, 99));
    expected.set(pattern(16, 99), 40);
    const state = await src.session.extractState(buffer.id);
    assert.instance(state, Uint8Array);
    assert.equal([...state], [...expected]);

    for (const dest of [sameWorker, otherWorker]) {
      const fresh = (await dest.lib.api.tq_create_buffer!(dest.context, 0, 64, null)).ret as Handle;
      assert.equal(await readAll(dest, fresh, 64), new Array(64).fill(0), 'a fresh buffer is zero');
      await dest.session.restoreState(fresh.id, state);
      assert.equal(await readAll(dest, fresh, 64), [...expected]);
      assert.equal([...(await dest.session.extractState(fresh.id))], [...expected]);
    }
  } finally {
    await src.lib.close();
    await sameWorker.lib.close();
    await otherWorker.lib.close();
    await other.close();
  }
});

test('explicit state: a size mismatch is an error and leaves the buffer as it was', async () => {
  const o = await openOn(worker);
  try {
    const small = (await o.lib.api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, 32, pattern(32, 3))).ret as Handle;
    let error: unknown;
    try {
      await o.session.restoreState(small.id, pattern(64, 1));
    } catch (e) {
      error = e;
    }
    assert.ok(AvaError.isAvaError(error), `restore of 64 bytes into 32 did not fail with an AvaError: ${String(error)}`);
    assert.is((error as AvaError).code, 'ERR_AVA_API_STATUS');
    assert.equal(await readAll(o, small, 32), [...pattern(32, 3)]);
  } finally {
    await o.lib.close();
  }
});

test('explicit state: kinds without state, and released buffers, are refused', async () => {
  const o = await openOn(worker);
  try {
    const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
      try {
        await p;
      } catch (e) {
        return (e as AvaError).code;
      }
      return undefined;
    };
    assert.is(await codeOf(o.session.extractState(o.queue.id)), 'ERR_AVA_UNSUPPORTED');
    // An id never bound is a forged handle, as it is for calls.
    assert.is(await codeOf(o.session.extractState(987654)), 'ERR_AVA_UNKNOWN_HANDLE');
    const b = (await o.lib.api.tq_create_buffer!(o.context, 0, 8, null)).ret as Handle;
    await o.lib.api.tq_release_buffer!(b);
    assert.is(await codeOf(o.session.extractState(b.id)), 'ERR_AVA_STALE_HANDLE');
    assert.is(await codeOf(o.session.restoreState(b.id, new Uint8Array(8))), 'ERR_AVA_STALE_HANDLE');
  } finally {
    await o.lib.close();
  }
});

test('explicit state: a call sent right after restoreState sees the restored bytes', async () => {
  const o = await openOn(worker);
  try {
    const b = (await o.lib.api.tq_create_buffer!(o.context, 0, 4, null)).ret as Handle;
    const dst = new Uint8Array(4);
    // restore first, then the read, without waiting in between: the read must come after the restore
    await Promise.all([o.session.restoreState(b.id, new Uint8Array([9, 8, 7, 6])), o.lib.api.tq_enqueue_read!(o.queue, b, 0, 4, dst)]);
    assert.equal([...dst], [9, 8, 7, 6]);
  } finally {
    await o.lib.close();
  }
});

test('explicit state: extractState does not see a write sent after it', async () => {
  const o = await openOn(worker);
  try {
    const b = (await o.lib.api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, 4, new Uint8Array([1, 2, 3, 4]))).ret as Handle;
    const [state] = await Promise.all([
      o.session.extractState(b.id),
      o.lib.api.tq_enqueue_write!(o.queue, b, 0, 4, new Uint8Array([5, 5, 5, 5])),
    ]);
    assert.equal([...state], [1, 2, 3, 4]);
  } finally {
    await o.lib.close();
  }
});

test('explicit state: a buffer whose context the guest already released can still be extracted', async () => {
  // toyacc keeps the context alive for its buffer and queue; the buffer is fully usable by the application.
  const o = await openOn(worker);
  try {
    const b = (await o.lib.api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, 8, pattern(8, 5))).ret as Handle;
    await o.lib.api.tq_release_context!(o.context);
    assert.equal(await readAll(o, b, 8), [...pattern(8, 5)], 'the application still reads it');
    assert.equal([...(await o.session.extractState(b.id))], [...pattern(8, 5)]);
  } finally {
    await o.lib.close();
  }
});

// ------------------------------------------------------------------------------------------ close

test('closing a session whose guest released nothing brings tq_debug_live_objects back', async () => {
  const before = liveObjects();
  const o = await openOn(worker);
  const api = o.lib.api;
  const program = (await api.tq_create_program!(o.context, 'fill axpy scale checksum')).ret as Handle;
  await api.tq_build_program!(program, '-O1');
  const fill = (await api.tq_create_kernel!(program, 'fill')).ret as Handle;
  const checksum = (await api.tq_create_kernel!(program, 'checksum')).ret as Handle;
  const x = (await api.tq_create_buffer!(o.context, 0, 64, null)).ret as Handle;
  const y = (await api.tq_create_buffer!(o.context, 0, 4, null)).ret as Handle;
  await api.tq_set_kernel_arg!(fill, 0, 8, x);
  await api.tq_set_kernel_arg!(fill, 1, 4, new Uint8Array(new Float32Array([2]).buffer));
  await api.tq_set_kernel_arg!(checksum, 0, 8, x);
  await api.tq_set_kernel_arg!(checksum, 1, 8, y);
  await api.tq_enqueue_kernel!(o.queue, fill, 16);
  await api.tq_enqueue_kernel!(o.queue, checksum, 16);
  // extra references the guest never gives back
  await api.tq_retain_context!(o.context);
  await api.tq_retain_buffer!(x);
  await api.tq_retain_buffer!(x);
  await api.tq_retain_kernel!(fill);
  await api.tq_retain_program!(program);
  // and one object released properly, one released partly
  const gone = (await api.tq_create_buffer!(o.context, 0, 8, null)).ret as Handle;
  await api.tq_release_buffer!(gone);
  await api.tq_retain_queue!(o.queue);
  await api.tq_release_queue!(o.queue);
  assert.is(liveObjects() - before, 7, 'context, queue, program, 2 kernels, 2 buffers');
  const id = o.session.id;
  await o.lib.close();
  assert.is(liveObjects(), before);
  assert.not.ok(worker.sessions.some((s) => s.id === id));
});

test('closing the worker closes its sessions and releases their objects', async () => {
  const w = await Worker.open({ spec: toyaccSpec });
  const before = liveObjects();
  const s = w.openSession();
  await ok(s, 'tq_get_devices', [2, [1, 2], true]);
  await ok(s, 'tq_create_context', [1, [1], true], 3);
  await ok(s, 'tq_create_buffer', [3, 0, 8, null, true], 4);
  await ok(s, 'tq_retain_buffer', [4]);
  assert.is(liveObjects(), before + 2);
  await w.close();
  assert.is(liveObjects(), before);
  assert.is(w.sessions.length, 0);
  assert.is((await send(s, 'tq_finish', [1])).error?.code, 'ERR_AVA_CLOSED');
});

test.after(async () => {
  await worker.close();
  await native.close();
});

test.run();
