/**
 * The shm transport: the ring on its own (random frames through a small ring, bad frames, close), then guest
 * sessions against a worker thread (the toyacc demo against the local channel, frames bigger than the ring, many
 * asynchronous calls, an asynchronous failure, a thread that dies).
 *
 * node --import tsx test/transport/shm.test.ts
 */
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { RemoteChannel } from '../../src/transport/remote.js';
import { openShmChannel, shmThreadOf } from '../../src/transport/shm.js';
import { ShmLink } from '../../src/transport/shm-link.js';
import { RingReader, RingWriter, ShmRing, createRingBuffer } from '../../src/transport/shm-ring.js';
import { decodeBody } from '../../src/wire/codec.js';
import type { Frame } from '../../src/wire/frames.js';


async function rejection(p: Promise<unknown>): Promise<AvaError> {
  try {
    await p;
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `an ava error, got ${String(error)}`);
    return error as AvaError;
  }
  throw new Error('expected a rejection');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e); });
  });
}

/** Pushes byte messages through one ring from a writer to a reader of the same thread; resolves with what came out. */
function pump(ringBytes: number, messages: readonly Uint8Array[], spinMicros = 5): Promise<Uint8Array[]> {
  const ring = new ShmRing(createRingBuffer(ringBytes));
  const got: Uint8Array[] = [];
  return new Promise((resolve, reject) => {
    const reader = new RingReader(ring, {
      spinMicros,
      onMessage: (body) => {
        got.push(body);
        if (got.length === messages.length) {
          reader.stop();
          resolve(got);
        }
      },
      onError: reject,
      onEnd: () => resolve(got),
    });
    reader.start();
    if (messages.length === 0) {
      reader.stop();
      resolve(got);
      return;
    }
    const writer = new RingWriter(ring, { spinMicros });
    for (const m of messages) writer.send(m);
  });
}

test('ring: random-sized messages through a small ring arrive in order, identical (fast-check)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(16, 64, 256, 4096),
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 600 }), { minLength: 0, maxLength: 40 }),
      async (ringBytes, messages) => {
        const got = await withTimeout(pump(ringBytes, messages), 10_000, 'ring pump');
        assert.is(got.length, messages.length);
        got.forEach((m, i) => assert.equal(m, messages[i], `message ${i} of ${messages.length} (ring ${ringBytes})`));
      },
    ),
    { numRuns: 60 },
  );
});

test('ring: random call frames through a pair of links with a small ring round-trip through the codec (fast-check)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({
        fn: fc.constantFrom('tq_enqueue_write', 'tq_set_kernel_arg', 'f'),
        bytes: fc.uint8Array({ maxLength: 3000 }),
        n: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        async: fc.boolean(),
      }), { minLength: 1, maxLength: 30 }),
      async (calls) => {
        const a = createRingBuffer(256);
        const b = createRingBuffer(256);
        const guest = new ShmLink({ rx: b, tx: a }, { spinMicros: 5, keepAlive: false });
        const worker = new ShmLink({ rx: a, tx: b }, { spinMicros: 5, keepAlive: false });
        const sent: Frame[] = calls.map((c, seq) => ({ t: 'call', seq, fn: c.fn, args: [c.n, c.bytes, null, [1, 'x']], retId: null, async: c.async }));
        const got: Frame[] = [];
        const done = new Promise<void>((resolve) => worker.onFrame((f) => { got.push(f); if (got.length === sent.length) resolve(); }));
        for (const f of sent) guest.send(f);
        await withTimeout(done, 10_000, 'frames');
        assert.equal(got, sent);
        guest.close();
        await withTimeout(new Promise<void>((r) => worker.onClose(() => r())), 5000, 'close');
      },
    ),
    { numRuns: 40 },
  );
});

test('link: closing one side fires onClose exactly once on both sides, after the frames sent before', async () => {
  const a = createRingBuffer(64);
  const b = createRingBuffer(64);
  const guest = new ShmLink({ rx: b, tx: a }, { keepAlive: false });
  const worker = new ShmLink({ rx: a, tx: b }, { keepAlive: false });
  const closes = { guest: 0, worker: 0 };
  const got: Frame[] = [];
  guest.onClose(() => closes.guest++);
  worker.onClose(() => closes.worker++);
  worker.onFrame((f) => got.push(f));
  for (let i = 0; i < 20; i++) guest.send({ t: 'control', id: i, op: 'ping', bytes: new Uint8Array(50).fill(i) });
  guest.close();
  guest.close();
  await new Promise((r) => setTimeout(r, 50));
  worker.close();
  worker.destroy();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(closes, { guest: 1, worker: 1 });
  assert.is(got.length, 20, 'every frame sent before close() arrived');
  assert.equal(got.map((f) => (f as { id: number }).id), [...Array(20).keys()]);
  // A listener that comes late is told at once.
  let late = 0;
  worker.onClose(() => late++);
  await Promise.resolve();
  assert.is(late, 1);
});

test('link: a bad frame is answered with an error frame and closes the link with a WireFormatError', async () => {
  const a = createRingBuffer(1024);
  const b = createRingBuffer(1024);
  const worker = new ShmLink({ rx: a, tx: b }, { keepAlive: false });
  const closed = new Promise<Error | undefined>((r) => worker.onClose(r));
  const answers: Frame[] = [];
  const answered = new Promise<void>((resolve) => {
    const reader = new RingReader(new ShmRing(b), {
      onMessage: (body) => { answers.push(decodeBody(body)); },
      onError: () => {},
      onEnd: () => { reader.stop(); resolve(); },
    });
    reader.start();
  });
  const raw = new RingWriter(new ShmRing(a));
  raw.send(new Uint8Array([0xff, 0xfe, 0x00])); // not CBOR
  const error = await withTimeout(closed, 5000, 'close');
  assert.ok(error && AvaError.isAvaError(error), 'closed with an error');
  assert.is((error as AvaError).code, 'ERR_AVA_BAD_FRAME');
  await withTimeout(answered, 5000, 'answer');
  assert.is(answers.length, 1);
  assert.is(answers[0]!.t, 'error');
  assert.is((answers[0] as { error: { code: string } }).error.code, 'ERR_AVA_BAD_FRAME');
});

test('link: a frame longer than the limit is refused before it is buffered', async () => {
  const a = createRingBuffer(64);
  const b = createRingBuffer(64);
  // Nobody reads the answer, so the error frame cannot be flushed through the tiny ring: the close gives up on it.
  const worker = new ShmLink({ rx: a, tx: b }, { keepAlive: false, limits: { maxFrameBytes: 1000 }, closeFlushMs: 100 });
  const closed = new Promise<Error | undefined>((r) => worker.onClose(r));
  new RingWriter(new ShmRing(a)).send(new Uint8Array(5000));
  const error = await withTimeout(closed, 5000, 'close');
  assert.is((error as AvaError).code, 'ERR_AVA_FRAME_TOO_LARGE');
});

const local = await openGuestlib(toyaccSpec);
const expected = await runToyaccDemo(local.api);
await local.close();

async function shmLib(sessionId: string, ringBytes?: number): Promise<Guestlib> {
  const channel = await openShmChannel({ spec: toyaccSpec, sessionId, ...(ringBytes ? { ringBytes } : {}) });
  assert.is(channel.kind, 'shm');
  return openGuestlib(toyaccSpec, { channel });
}

interface Setup { readonly context: Handle; readonly queue: Handle; readonly kernel: Handle }
async function setup(lib: Guestlib): Promise<Setup> {
  const api = lib.api;
  const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
  const context = (await api.tq_create_context!(1, devices)).ret as Handle;
  const queue = (await api.tq_create_queue!(context, devices[0])).ret as Handle;
  const program = (await api.tq_create_program!(context, 'fill axpy scale checksum')).ret as Handle;
  await api.tq_build_program!(program, '');
  const kernel = (await api.tq_create_kernel!(program, 'fill')).ret as Handle;
  return { context, queue, kernel };
}

test('shm: the toyacc demo gives the same result as the local channel', async () => {
  const lib = await shmLib('demo');
  try {
    assert.equal(await runToyaccDemo(lib.api), expected);
    assert.ok(shmThreadOf(lib.session.channel as RemoteChannel), 'the thread is reachable for tests');
  } finally {
    await lib.close();
  }
});

test('shm: frames bigger than the ring (16 MiB through a 1 MiB ring) round-trip intact', async () => {
  const lib = await shmLib('big', 1 << 20);
  try {
    const { context, queue } = await setup(lib);
    const n = 16 << 20;
    const buffer = (await lib.api.tq_create_buffer!(context, 0, n, null)).ret as Handle;
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i += 4096) data.set(new Uint8Array(new Uint32Array(1024).map((_, k) => (i * 2654435761 + k * 40503) >>> 0).buffer), i);
    await lib.api.tq_enqueue_write!(queue, buffer, 0, n, data);
    const back = new Uint8Array(n);
    await lib.api.tq_enqueue_read!(queue, buffer, 0, n, back);
    assert.ok(Buffer.compare(Buffer.from(back.buffer), Buffer.from(data.buffer)) === 0, '16 MiB came back identical');
    // And the small frames around them still flow.
    const units = new Uint32Array(1);
    const devices = (await lib.api.tq_get_devices!(1, true)).outs.devices as Handle[];
    await lib.api.tq_get_device_info!(devices[0], TQ.DEVICE_UNITS, 4, units);
    assert.ok(units[0]! > 0);
  } finally {
    await lib.close();
  }
});

test('shm: 10,000 asynchronous calls then one waiting call all complete, in order', async () => {
  const lib = await shmLib('many');
  try {
    const { context, queue, kernel } = await setup(lib);
    const count = 10_000;
    const buffer = (await lib.api.tq_create_buffer!(context, 0, 4 * count, null)).ret as Handle;
    const value = new Uint8Array(4);
    let posted = 0;
    for (let batch = 0; batch < count; batch += 1000) {
      for (let i = batch; i < batch + 1000; i++) {
        new DataView(value.buffer).setFloat32(0, i, true);
        void lib.api.tq_set_kernel_arg!(kernel, 1, 4, value);
        // Each write lands in its own slot: reading the buffer back proves every call ran.
        void lib.api.tq_enqueue_write!(queue, buffer, 4 * i, 4, new Uint8Array(new Uint32Array([i * 7 + 1]).buffer));
        posted += 2;
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.is(posted, 2 * count);
    const before = lib.session.callCount;
    const out = new Uint32Array(count);
    await lib.api.tq_enqueue_read!(queue, buffer, 0, 4 * count, out);
    assert.is(lib.session.callCount, before + 1);
    for (let i = 0; i < count; i++) if (out[i] !== i * 7 + 1) assert.unreachable(`slot ${i} holds ${out[i]}`);
  } finally {
    await lib.close();
  }
});

test('shm: a failed asynchronous call surfaces at the next waiting call as ERR_AVA_ASYNC_CALL_FAILED', async () => {
  const lib = await shmLib('async-fail');
  try {
    const { kernel, queue } = await setup(lib);
    // Posted: the application gets the expected success at once.
    const posted = await lib.api.tq_set_kernel_arg!(kernel, 99, 4, new Uint8Array(4));
    assert.is(posted.ret, TQ.SUCCESS);
    const error = await rejection(lib.api.tq_finish!(queue));
    assert.is(error.code, 'ERR_AVA_ASYNC_CALL_FAILED');
    assert.is(error.details.fn, 'tq_set_kernel_arg');
    assert.match(error.message, 'tq_set_kernel_arg');
    // Reported once; the session goes on.
    const ok = await lib.api.tq_finish!(queue);
    assert.is(ok.ret, TQ.SUCCESS);
  } finally {
    await lib.close();
  }
});

test('shm: a worker thread that is killed rejects a pending call with ERR_AVA_CHANNEL_CLOSED', async () => {
  const lib = await shmLib('killed', 1 << 16);
  const { context, queue } = await setup(lib);
  const n = 16 << 20;
  const buffer = (await lib.api.tq_create_buffer!(context, 0, n, null)).ret as Handle;
  // A 16 MiB write through a 64 KiB ring takes many turns: the waiting call behind it is surely still pending.
  void lib.api.tq_enqueue_write!(queue, buffer, 0, n, new Uint8Array(n));
  const pending = lib.api.tq_finish!(queue);
  const thread = shmThreadOf(lib.session.channel as RemoteChannel)!;
  void thread.terminate();
  const error = await withTimeout(rejection(pending), 5000, 'pending call');
  assert.is(error.code, 'ERR_AVA_CHANNEL_CLOSED');
  // Later calls fail the same way, at once.
  const later = await withTimeout(rejection(lib.api.tq_get_devices!(1, true)), 5000, 'later call');
  assert.is(later.code, 'ERR_AVA_CHANNEL_CLOSED');
  await lib.close();
});

test('shm: a session that closes ends its worker thread', async () => {
  const lib = await shmLib('ends');
  const thread = shmThreadOf(lib.session.channel as RemoteChannel)!;
  const exited = new Promise<number>((r) => thread.once('exit', r));
  await lib.close();
  const code = await withTimeout(exited, 5000, 'thread exit');
  assert.is(code, 0, 'the thread ended by itself, not terminated');
});

test('shm: an unknown spec is refused with the worker\'s own error', async () => {
  const error = await rejection(openShmChannel({ spec: { ...toyaccSpec, name: 'nope' }, sessionId: 'bad' }));
  assert.is(error.code, 'ERR_AVA_CONFIG');
});

test.run();
