/**
 * The one transport contract. Every channel kind (local, shm, unix, tcp) runs this suite in one line:
 *
 * ```ts
 * channelContract('unix', (spec, sessionId) => connectSocketChannel({ address, spec, sessionId }), { after: stop });
 * ```
 *
 * `open` must give a channel to a session of ONE worker that stays the same for the whole suite, so that two channels
 * opened at once are two sessions of that worker (a transport that starts a worker per channel says
 * `sharedWorker: false`). Every test opens its own sessions and closes them; every wait is bounded; the `after`
 * option runs once the suite is done (stop the worker there).
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { ApiSpec } from '../../src/spec/types.js';
import type { Channel } from '../../src/transport/channel.js';
import type { CallFrame, ReplyFrame, WireValue } from '../../src/wire/frames.js';
import { openNativeApi } from '../../src/worker/native-api.js';

/** Opens a channel to a new session `sessionId` of the suite's worker. */
export type OpenChannel = (spec: ApiSpec, sessionId: string) => Promise<Channel>;

/** Options of {@link channelContract}. */
export interface ChannelContractOptions {
  /** Runs after the suite (after every channel it opened is closed): stop the worker process here. */
  readonly after?: () => Promise<void> | void;
  /** Bound of one test. @defaultValue 60000 ms */
  readonly testTimeoutMs?: number;
  /**
   * Whether two channels that `open` makes at once are sessions of one worker. False for transports that start a
   * worker per channel (shm): the two sessions are then still checked for isolation and concurrent results.
   * @defaultValue true
   */
  readonly sharedWorker?: boolean;
}

const OPEN_TIMEOUT_MS = 20_000;
const CLOSED_CODES = ['ERR_AVA_CLOSED', 'ERR_AVA_CHANNEL_CLOSED'];
const f32 = (v: number): Uint8Array => new Uint8Array(new Float32Array([v]).buffer);

/** Rejects when `promise` takes longer than `ms`. */
export async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits a rejection with one of `codes` (an AvaError's stable code; messages are never asserted). */
export async function rejectsWith(promise: Promise<unknown>, codes: string | readonly string[], what: string): Promise<AvaError> {
  const expected = typeof codes === 'string' ? [codes] : codes;
  let outcome: unknown;
  try {
    await within(15_000, promise, what);
    outcome = undefined;
  } catch (error) {
    outcome = error;
  }
  if (outcome === undefined) assert.unreachable(`${what}: resolved, expected a rejection with ${expected.join(' or ')}`);
  if (!AvaError.isAvaError(outcome)) {
    assert.unreachable(`${what}: rejected with a non-coded error: ${String((outcome as Error)?.message ?? outcome)}`);
  }
  const error = outcome as AvaError;
  assert.ok(expected.includes(error.code), `${what}: got ${error.code} (${error.message}), expected ${expected.join(' or ')}`);
  return error;
}

/** A pattern of `n` bytes that differs with `seed`, cheap to make for tens of MiB. */
function pattern(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761) ^ Math.imul(seed, 40503);
  return new Uint8Array(words.buffer, 0, n);
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

interface Objects {
  readonly devices: Handle[];
  readonly context: Handle;
  readonly queue: Handle;
  readonly program: Handle;
  readonly fill: Handle;
  readonly buffer: Handle;
}

/** Devices, a context, a queue, a built program with its `fill` kernel and a buffer of `bytes` bytes. */
async function setUp(api: ApiObject, bytes: number): Promise<Objects> {
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const context = (await api.tq_create_context!(devices.length, devices)).ret as Handle;
  const queue = (await api.tq_create_queue!(context, devices[0])).ret as Handle;
  const program = (await api.tq_create_program!(context, 'fill axpy scale checksum')).ret as Handle;
  await api.tq_build_program!(program, null);
  const fill = (await api.tq_create_kernel!(program, 'fill')).ret as Handle;
  const buffer = (await api.tq_create_buffer!(context, 0, bytes, null)).ret as Handle;
  return { devices, context, queue, program, fill, buffer };
}

/** The size of a buffer, read with a waiting call. */
async function sizeOf(api: ApiObject, buffer: Handle): Promise<number> {
  const value = new Uint8Array(8);
  await api.tq_get_buffer_info!(buffer, TQ.BUFFER_SIZE, 8, value);
  return Number(Buffer.from(value).readBigUInt64LE(0));
}

/**
 * Registers (and runs) the transport contract suite for channels that `open` makes.
 * @param name the transport's name in test titles.
 */
export function channelContract(name: string, open: OpenChannel, options: ChannelContractOptions = {}): void {
  const s = suite(`transport contract: ${name}`);
  const testTimeout = options.testTimeoutMs ?? 60_000;
  const opened = new Set<Guestlib>();
  let nativeDemo: ToyaccDemoResult | undefined;

  /** A test whose unexpected coded errors are printed with their code (uvu cannot print an AvaError's details). */
  const it = (title: string, body: () => Promise<void>): void => {
    s(title, async () => {
      try {
        await within(testTimeout, body(), `${name}: ${title}`);
      } catch (error) {
        if (AvaError.isAvaError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`);
        throw error;
      }
    });
  };

  const openLib = async (tag: string): Promise<Guestlib> => {
    const sessionId = `${name}-${tag}-${randomUUID().slice(0, 8)}`;
    const channel = await within(OPEN_TIMEOUT_MS, open(toyaccSpec, sessionId), `opening a ${name} channel`);
    const lib = await openGuestlib(toyaccSpec, { channel, sessionId });
    opened.add(lib);
    return lib;
  };
  const closeLib = async (lib: Guestlib): Promise<void> => {
    opened.delete(lib);
    await within(10_000, lib.close(), `closing a ${name} session`);
  };

  /**
   * Runs `body` on a raw channel (frames by hand, no guestlib) to a new session, closing it after: `call` makes a
   * waiting call that must succeed, `failures` collects the seqs of asynchronous calls reported failed.
   */
  const withRawChannel = async (tag: string, body: (raw: { channel: Channel; call: (fn: string, args: WireValue[], retId?: number | null) => Promise<ReplyFrame>; failures: number[]; nextSeq: () => number }) => Promise<void>): Promise<void> => {
    const channel = await within(OPEN_TIMEOUT_MS, open(toyaccSpec, `${name}-${tag}-${randomUUID().slice(0, 8)}`), `opening a ${name} channel`);
    try {
      const failures: number[] = [];
      channel.onAsyncFailure((reply) => failures.push(reply.seq));
      let seq = 0;
      const nextSeq = (): number => seq++;
      const call = async (fn: string, args: WireValue[], retId: number | null = null): Promise<ReplyFrame> => {
        const reply = await within(5_000, channel.call({ seq: nextSeq(), fn, args, retId }), fn);
        assert.is(reply.error, undefined, `${fn}: ${reply.error?.message ?? ''}`);
        return reply;
      };
      await body({ channel, call, failures, nextSeq });
    } finally {
      await within(10_000, channel.close(), 'close()');
    }
  };

  s.before(async () => {
    await using native = await openNativeApi(toyaccSpec);
    nativeDemo = await runToyaccDemo(native.api);
  });

  s.after(async () => {
    const left = [...opened];
    opened.clear();
    await Promise.allSettled(left.map((lib) => within(10_000, lib.close(), 'closing a session left open')));
    await options.after?.();
  });

  it('the toyacc demo gives the native result', async () => {
    const lib = await openLib('demo');
    const channel = lib.session.channel;
    assert.ok(['local', 'shm', 'unix', 'tcp'].includes(channel.kind), `unknown channel kind ${channel.kind}`);
    assert.is(channel.supports.crossProcess, channel.kind === 'unix' || channel.kind === 'tcp', 'supports.crossProcess');
    const result = await runToyaccDemo(lib.api);
    assert.equal(result, nativeDemo);
    assert.ok(lib.session.callCount > 40, `the demo went through the session (${lib.session.callCount} calls)`);
    await closeLib(lib);
  });

  it('keeps call order across interleaved asynchronous and waiting calls', async () => {
    const lib = await openLib('order');
    const { api } = lib;
    const n = 256;
    const o = await setUp(api, 4 * n);
    const source = (await api.tq_create_buffer!(o.context, 0, 4 * n, null)).ret as Handle;
    await api.tq_set_kernel_arg!(o.fill, 0, 8, o.buffer);
    const pending: Promise<unknown>[] = [];
    const filled: Float32Array[] = [];
    const written: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    for (let k = 0; k < 40; k++) {
      // Not awaited: on remote channels these are posted and batched, the reads wait; the worker must run them in
      // the order they were made.
      pending.push(api.tq_set_kernel_arg!(o.fill, 1, 4, f32(k)));
      pending.push(api.tq_enqueue_kernel!(o.queue, o.fill, n));
      const out = new Float32Array(n);
      filled.push(out);
      const read = api.tq_enqueue_read!(o.queue, o.buffer, 0, 4 * n, out);
      const bytes = pattern(4 * n, k);
      written.push(bytes);
      pending.push(api.tq_enqueue_write!(o.queue, source, 0, 4 * n, bytes));
      const copy = new Uint8Array(4 * n);
      copies.push(copy);
      const readBack = api.tq_enqueue_read!(o.queue, source, 0, 4 * n, copy);
      if (k % 3 === 0) await read;
      else pending.push(read);
      if (k % 4 === 0) await readBack;
      else pending.push(readBack);
      if (k % 7 === 0) pending.push(sizeOf(api, o.buffer).then((size) => assert.is(size, 4 * n)));
    }
    await Promise.all(pending);
    filled.forEach((out, k) => assert.equal([...new Set(out)], [k], `read #${k} saw the fill with value ${k}`));
    copies.forEach((copy, k) => assert.ok(sameBytes(copy, written[k]!), `read-back #${k} saw write #${k}`));
    await closeLib(lib);
  });

  it('reports a failing asynchronous call at the next waiting call, naming the function', async () => {
    const lib = await openLib('async-failure');
    const { api } = lib;
    const o = await setUp(api, 64);
    const bad = (): Promise<unknown> => api.tq_set_kernel_arg!(o.fill, 99, 4, f32(1)); // fill has 2 arguments
    if (lib.session.channel.kind === 'local') {
      // The local proxy waits for every call: the failure is the call's own.
      const error = await rejectsWith(bad(), 'ERR_AVA_API_STATUS', 'tq_set_kernel_arg with a bad index');
      assert.is(error.details.fn, 'tq_set_kernel_arg');
      assert.is(error.details.status, TQ.INVALID_ARG_INDEX);
    } else {
      await within(5_000, bad(), 'posting tq_set_kernel_arg'); // posted: resolves as success
      await within(5_000, api.tq_set_kernel_arg!(o.fill, 1, 4, f32(2)), 'posting a good call after it');
      const value = new Uint8Array(4);
      const error = await rejectsWith(api.tq_get_device_info!(o.devices[0], TQ.DEVICE_UNITS, 4, value), 'ERR_AVA_ASYNC_CALL_FAILED', 'the next waiting call');
      assert.is(error.details.fn, 'tq_set_kernel_arg', 'details.fn names the failed call');
      assert.is(error.details.ret, TQ.INVALID_ARG_INDEX, 'details.ret carries its status');
      assert.ok(error.message.includes('tq_set_kernel_arg'), 'the message names the failed call');
    }
    // The failure is reported once; the session goes on.
    const value = new Uint8Array(4);
    const { outs } = await api.tq_get_device_info!(o.devices[0], TQ.DEVICE_UNITS, 4, value);
    assert.is(outs.size_ret, 4);
    assert.is(await sizeOf(api, o.buffer), 64);
    await closeLib(lib);
  });

  it('carries a 32 MiB write and read back intact', async () => {
    const lib = await openLib('big');
    const { api } = lib;
    const size = 32 * 1024 * 1024;
    const o = await setUp(api, size);
    const bytes = pattern(size, 7);
    await api.tq_enqueue_write!(o.queue, o.buffer, 0, size, bytes);
    const back = new Uint8Array(size);
    await api.tq_enqueue_read!(o.queue, o.buffer, 0, size, back);
    assert.ok(sameBytes(back, bytes), 'the 32 MiB read back equals what was written');
    // And the other way in: 32 MiB given at creation.
    const seeded = pattern(size, 8);
    const copyHost = (await api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, size, seeded)).ret as Handle;
    const back2 = new Uint8Array(size);
    await api.tq_enqueue_read!(o.queue, copyHost, 0, size, back2);
    assert.ok(sameBytes(back2, seeded), 'a 32 MiB buffer created from host bytes reads back intact');
    await api.tq_release_buffer!(copyHost);
    await closeLib(lib);
  });

  it('refuses forged handle ids with ERR_AVA_UNKNOWN_HANDLE', async () => {
    const lib = await openLib('forged');
    const { api } = lib;
    const o = await setUp(api, 64);
    const out8 = (): Uint8Array => new Uint8Array(8);
    for (const id of [2 ** 40, 987_654, -7, o.buffer.id + 1000]) {
      await rejectsWith(api.tq_get_buffer_info!(new Handle('buffer', id), TQ.BUFFER_SIZE, 8, out8()), 'ERR_AVA_UNKNOWN_HANDLE', `buffer ${id}`);
      await rejectsWith(api.tq_get_context_info!(new Handle('context', id), TQ.CONTEXT_REFCOUNT, 4, out8()), 'ERR_AVA_UNKNOWN_HANDLE', `context ${id}`);
      await rejectsWith(api.tq_get_device_info!(new Handle('device', id), TQ.DEVICE_UNITS, 4, out8()), 'ERR_AVA_UNKNOWN_HANDLE', `device ${id}`);
      await rejectsWith(api.tq_finish!(new Handle('queue', id)), 'ERR_AVA_UNKNOWN_HANDLE', `queue ${id}`);
    }
    // A real id of another kind is not a handle of the kind the argument needs.
    await rejectsWith(api.tq_get_buffer_info!(new Handle('buffer', o.context.id), TQ.BUFFER_SIZE, 8, out8()), 'ERR_AVA_HANDLE_KIND', 'a context id as a buffer');
    // A forged id in a call the proxy may post: reported at once (local) or at the next waiting call (remote).
    const forgedLaunch = api.tq_enqueue_kernel!(o.queue, new Handle('kernel', 2 ** 41), 16);
    if (lib.session.channel.kind === 'local') {
      await rejectsWith(forgedLaunch, 'ERR_AVA_UNKNOWN_HANDLE', 'a launch of a forged kernel');
    } else {
      await within(5_000, forgedLaunch, 'posting a launch of a forged kernel');
      const error = await rejectsWith(sizeOf(api, o.buffer), 'ERR_AVA_ASYNC_CALL_FAILED', 'the waiting call after it');
      assert.is(error.details.fn, 'tq_enqueue_kernel');
      assert.is((error.details.error as { code?: string } | null)?.code, 'ERR_AVA_UNKNOWN_HANDLE', 'the posted call failed on its forged kernel');
    }
    // The session's real handles still work.
    assert.is(await sizeOf(api, o.buffer), 64);
    // Explicit state of a forged id.
    await rejectsWith(lib.session.extractState(2 ** 40), 'ERR_AVA_UNKNOWN_HANDLE', 'extractState of a forged id');
    await closeLib(lib);
  });

  it('extractState of a toyacc buffer returns its bytes', async () => {
    const lib = await openLib('state');
    const { api } = lib;
    const n = 4096 + 3;
    const o = await setUp(api, 16);
    const initial = pattern(n, 1);
    const buffer = (await api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, n, initial)).ret as Handle;
    assert.ok(sameBytes(await lib.session.extractState(buffer.id), initial), 'state of a buffer created from host bytes');
    const next = pattern(n, 2);
    await api.tq_enqueue_write!(o.queue, buffer, 0, n, next); // posted on remote channels
    assert.ok(sameBytes(await lib.session.extractState(buffer.id), next), 'state after a write sent before it');
    assert.ok(sameBytes(await lib.session.channel.extractState(buffer.id), next), 'the channel gives the same state');
    await closeLib(lib);
  });

  it('extractState sees exactly the calls sent before it, not those sent after', async () => {
    const lib = await openLib('state-order');
    const { api } = lib;
    const n = 1024;
    const o = await setUp(api, 16);
    const before = pattern(n, 3);
    const buffer = (await api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, n, before)).ret as Handle;
    const after = pattern(n, 4);
    const state = lib.session.extractState(buffer.id);
    const write = api.tq_enqueue_write!(o.queue, buffer, 0, n, after);
    lib.session.flush();
    const [bytes] = await within(10_000, Promise.all([state, write]), 'extract, then write');
    assert.ok(sameBytes(bytes, before), 'the state read before the write does not contain the write');
    assert.ok(sameBytes(await lib.session.extractState(buffer.id), after), 'a later extract sees the write');
    await closeLib(lib);
  });

  it('restoreState writes a buffer\'s bytes, after the calls sent before it', async () => {
    const lib = await openLib('restore');
    const { api } = lib;
    const channel = lib.session.channel;
    const n = 2048;
    const o = await setUp(api, 16);
    const buffer = (await api.tq_create_buffer!(o.context, TQ.MEM_COPY_HOST, n, pattern(n, 5))).ret as Handle;
    await api.tq_enqueue_write!(o.queue, buffer, 0, n, pattern(n, 6)); // posted on remote channels
    lib.session.flush();
    const restored = pattern(n, 7);
    await within(10_000, channel.restoreState(buffer.id, restored), 'restoreState');
    const back = new Uint8Array(n);
    await api.tq_enqueue_read!(o.queue, buffer, 0, n, back);
    assert.ok(sameBytes(back, restored), 'a read after restoreState sees the restored bytes, not the write before it');
    assert.ok(sameBytes(await lib.session.extractState(buffer.id), restored), 'extractState gives them back');
    await rejectsWith(channel.restoreState(buffer.id, new Uint8Array(n + 1)), 'ERR_AVA_API_STATUS', 'restoreState with the wrong size');
    await rejectsWith(channel.restoreState(2 ** 40, restored), 'ERR_AVA_UNKNOWN_HANDLE', 'restoreState of a forged id');
    await closeLib(lib);
  });

  it('barrier() resolves after every call sent before it, their failures reported', async () => {
    // On the bare channel: raw frames, no guest session in between.
    const channel = await within(OPEN_TIMEOUT_MS, open(toyaccSpec, `${name}-barrier-${randomUUID().slice(0, 8)}`), `opening a ${name} channel`);
    try {
      const failures: { seq: number; fn?: string }[] = [];
      channel.onAsyncFailure((reply) => failures.push({ seq: reply.seq, ...(reply.fn ? { fn: reply.fn } : {}) }));
      let seq = 0;
      const devices = await within(5_000, channel.call({ seq: seq++, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null }), 'tq_get_devices');
      assert.equal(devices.outs?.devices, [1, 2]);
      channel.post([
        { seq: seq++, fn: 'tq_create_context', args: [1, [1], true], retId: 3, async: true },
        { seq: seq++, fn: 'tq_finish', args: [987_654], retId: null, async: true }, // a forged queue: fails
        { seq: seq++, fn: 'tq_create_queue', args: [3, 1, true], retId: 4, async: true },
      ]);
      await within(10_000, channel.barrier(), 'barrier()');
      assert.equal(failures, [{ seq: 2, fn: 'tq_finish' }], 'the failed call was reported before barrier() resolved, and only it');
      const info = await within(5_000, channel.call({ seq: seq++, fn: 'tq_get_context_info', args: [3, TQ.CONTEXT_REFCOUNT, 4, true, true], retId: null }), 'context info');
      assert.is(info.ret, TQ.SUCCESS, 'the calls posted before the barrier ran');
      const finish = await within(5_000, channel.call({ seq: seq++, fn: 'tq_finish', args: [4], retId: null }), 'tq_finish');
      assert.is(finish.ret, TQ.SUCCESS, 'the queue posted after the failure exists');
    } finally {
      await within(10_000, channel.close(), 'close()');
    }
  });

  it('runs a batch of posted calls in order: a forged one fails alone, a handle made in the batch is usable in it', async () => {
    // Workers run consecutive posted calls that give back only their status in bursts (prepared together, then
    // called back to back): neither a failure in a burst nor a handle made between bursts may change the outcome.
    await withRawChannel('burst', async ({ channel, call, failures, nextSeq }) => {
      await call('tq_get_devices', [2, [1, 2], true]);
      await call('tq_create_context', [1, [1], true], 3);
      await call('tq_create_queue', [3, 1, true], 4);
      await call('tq_create_buffer', [3, 0, 16, null, true], 5);
      const word = (v: number): Uint8Array => Uint8Array.of(v, v, v, v);
      const write = (buffer: number, offset: number, v: number): CallFrame => ({ seq: nextSeq(), fn: 'tq_enqueue_write', args: [4, buffer, offset, 4, word(v)], retId: null, async: true });
      const batch = [write(5, 0, 1), write(5, 4, 2), write(987_654, 0, 9), write(5, 8, 3)];
      const forged = batch[2]!.seq;
      batch.push({ seq: nextSeq(), fn: 'tq_create_buffer', args: [3, 0, 4, null, true], retId: 6, async: true });
      batch.push(write(6, 0, 7), write(5, 12, 4), write(5, 0, 5));
      channel.post(batch);
      await within(10_000, channel.barrier(), 'barrier()');
      assert.equal(failures, [forged], 'only the write to a forged buffer failed');
      const first = await call('tq_enqueue_read', [4, 5, 0, 16, true]);
      assert.equal([...(first.outs?.dst as Uint8Array)], [5, 5, 5, 5, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], 'the writes ran, in order');
      const second = await call('tq_enqueue_read', [4, 6, 0, 4, true]);
      assert.equal([...(second.outs?.dst as Uint8Array)], [7, 7, 7, 7], 'the buffer made in the batch took the write after it');
    });
  });

  it('runs every call of a run posted with one args object (a front\'s repeat, folded on the wire), failures each under its own seq', async () => {
    await withRawChannel('repeat', async ({ channel, call, failures, nextSeq }) => {
      const floats = (...v: number[]): Uint8Array => new Uint8Array(new Float32Array(v).buffer);
      await call('tq_get_devices', [2, [1, 2], true]);
      await call('tq_create_context', [1, [1], true], 3);
      await call('tq_create_queue', [3, 1, true], 4);
      await call('tq_create_buffer', [3, 0, 16, null, true], 5);
      await call('tq_create_buffer', [3, 0, 16, null, true], 6);
      await call('tq_enqueue_write', [4, 5, 0, 16, floats(1, 1, 1, 1)]);
      await call('tq_enqueue_write', [4, 6, 0, 16, floats(0, 0, 0, 0)]);
      await call('tq_create_program', [3, 'axpy', true], 7);
      await call('tq_build_program', [7, null]);
      await call('tq_create_kernel', [7, 'axpy', true], 8);
      await call('tq_set_kernel_arg', [8, 0, 4, floats(1)]);
      await call('tq_set_kernel_arg', [8, 1, 8, { handle: 5 }]);
      await call('tq_set_kernel_arg', [8, 2, 8, { handle: 6 }]);
      // y += x: six launches with one args object, then three with a forged kernel, then three more launches.
      const launch: WireValue[] = [4, 8, 4];
      const forged: WireValue[] = [4, 987_654, 4];
      const post = (args: readonly WireValue[], n: number): CallFrame[] => Array.from({ length: n }, () => ({ seq: nextSeq(), fn: 'tq_enqueue_kernel', args, retId: null, async: true }));
      const batch = [...post(launch, 6), ...post(forged, 3), ...post(launch, 3)];
      channel.post(batch);
      await within(10_000, channel.barrier(), 'barrier()');
      assert.equal(failures, batch.slice(6, 9).map((f) => f.seq), 'each forged launch failed under its own seq');
      const y = await call('tq_enqueue_read', [4, 6, 0, 16, true]);
      assert.equal([...new Float32Array(new Uint8Array(y.outs?.dst as Uint8Array).buffer)], [9, 9, 9, 9], 'each of the nine launches ran');
    });
  });

  it('isolates two sessions of one worker and runs both at once', async () => {
    const [a, b] = await Promise.all([openLib('a'), openLib('b')]);
    const ida = (a.session.channel as { workerId?: string }).workerId;
    const idb = (b.session.channel as { workerId?: string }).workerId;
    if (options.sharedWorker !== false && (ida !== undefined || idb !== undefined)) assert.is(ida, idb, 'both sessions are on the same worker');
    const results = await Promise.all([runToyaccDemo(a.api), runToyaccDemo(b.api), runToyaccDemo(a.api), runToyaccDemo(b.api)]);
    results.forEach((r, i) => assert.equal(r, nativeDemo, `concurrent demo #${i}`));
    // Both sessions issued the same ids so far; a's new objects get ids that b never issued.
    const nextOfB = b.session.newHandleId();
    const oa = await setUp(a.api, 64);
    for (const handle of [oa.context, oa.queue, oa.program, oa.fill, oa.buffer]) {
      assert.ok(handle.id > nextOfB, `a's ${handle.kind} id ${handle.id} is past b's ids (${nextOfB})`);
    }
    await rejectsWith(b.api.tq_get_buffer_info!(oa.buffer, TQ.BUFFER_SIZE, 8, new Uint8Array(8)), 'ERR_AVA_UNKNOWN_HANDLE', "a's buffer in b");
    await rejectsWith(b.api.tq_get_context_info!(oa.context, TQ.CONTEXT_REFCOUNT, 4, new Uint8Array(4)), 'ERR_AVA_UNKNOWN_HANDLE', "a's context in b");
    await rejectsWith(b.api.tq_finish!(oa.queue), 'ERR_AVA_UNKNOWN_HANDLE', "a's queue in b");
    assert.is(await sizeOf(a.api, oa.buffer), 64, "a's buffer is still fine in a");
    await rejectsWith(b.session.extractState(oa.buffer.id), 'ERR_AVA_UNKNOWN_HANDLE', "a's buffer state in b");
    await Promise.all([closeLib(a), closeLib(b)]);
  });

  it('rejects calls after close() with a coded error', async () => {
    const lib = await openLib('close');
    const channel = lib.session.channel;
    const devices = (await lib.api.tq_get_devices!(2, true)).outs.devices as Handle[];
    await closeLib(lib);
    await rejectsWith(lib.api.tq_get_device_info!(devices[0], TQ.DEVICE_UNITS, 4, new Uint8Array(4)), CLOSED_CODES, 'a call through the closed guestlib');
    await rejectsWith(channel.call({ seq: 1_000, fn: 'tq_debug_live_objects', args: [], retId: null }), CLOSED_CODES, 'a call on the closed channel');
    await rejectsWith(channel.extractState(1), CLOSED_CODES, 'extractState on the closed channel');
    await rejectsWith(channel.restoreState(1, new Uint8Array(4)), CLOSED_CODES, 'restoreState on the closed channel');
    await rejectsWith(channel.barrier(), CLOSED_CODES, 'barrier() on the closed channel');
    let thrown: unknown;
    try {
      channel.post([{ seq: 1_001, fn: 'tq_finish', args: [1], retId: null, async: true }]);
    } catch (error) {
      thrown = error;
    }
    assert.ok(AvaError.isAvaError(thrown) && CLOSED_CODES.includes(thrown.code), `post on the closed channel throws a coded error (${String(thrown)})`);
    await within(5_000, channel.close(), 'a second close()');
  });

  s.run();
}
