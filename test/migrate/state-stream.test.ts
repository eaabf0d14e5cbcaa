/**
 * Explicit state streamed straight from a source worker to a target worker (src/worker/state-stream.ts), as a
 * migration moves it: two real workers listening on a unix socket and on tcp (with its token), real toyacc buffers.
 * Whole objects and byte ranges arrive intact in chunks of every size; intake tokens are one-time and checked; a
 * target that cannot be reached falls back to the relay through the guest; a chunk whose bytes do not match its
 * checksum, or a malformed frame, is refused with a coded error and the target worker goes on serving.
 *
 * node --import tsx test/migrate/state-stream.test.ts
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { moveState, rangeItems, wholeItems } from '../../migrate/copy-state.js';
import { replayOnto } from '../../replay/executor.js';
import { planReplay } from '../../replay/plan.js';
import type { ReplayPlan } from '../../replay/plan.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { Channel, StateIntake } from '../../src/transport/channel.js';
import { openSocket, connectSocketChannel } from '../../src/transport/connect.js';
import type { RemoteChannel } from '../../src/transport/remote.js';
import { FrameReader, encodeFrame } from '../../src/wire/codec.js';
import type { Frame } from '../../src/wire/frames.js';
import { PROTOCOL_VERSION } from '../../src/wire/frames.js';
import { WorkerListener } from '../../src/worker/listener.js';
import { Worker } from '../../src/worker/worker.js';
import { ForwardingChannel } from '../replay/helpers.js';
import { removeTemp, tempDir, test } from './helpers.js';

/** Buffer sizes: several chunks of 64 KiB and a remainder, one byte, and less than one chunk. */
const SIZES = [300_000, 1, 70_000];
const CHUNK = 64 * 1024;

let dir: string;
let sourceListener: WorkerListener;
let targetListener: WorkerListener;

uvuTest.before(async () => {
  dir = tempDir('ava-state-stream-');
  sourceListener = await WorkerListener.listen({ worker: await Worker.open({ spec: toyaccSpec }), address: { kind: 'unix', path: join(dir, 'source.sock') } });
  targetListener = await WorkerListener.listen({ worker: await Worker.open({ spec: toyaccSpec }), address: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
});
uvuTest.after(async () => {
  await sourceListener?.close();
  await targetListener?.close();
  await sourceListener?.worker.close();
  await targetListener?.worker.close();
  removeTemp(dir);
});

interface Scene {
  readonly lib: Guestlib;
  readonly source: RemoteChannel;
  readonly target: RemoteChannel;
  readonly plan: ReplayPlan;
  readonly queue: Handle;
  readonly buffers: readonly { handle: Handle; size: number }[];
}

/**
 * A journaled session on the source worker with buffers of random bytes, and a target session (on the tcp worker) into
 * which the journal was replayed: the objects exist there with the same ids, empty.
 */
async function scene(): Promise<Scene> {
  const sessionId = randomUUID();
  const source = await connectSocketChannel({ address: sourceListener.address, spec: toyaccSpec, sessionId });
  const lib = await openGuestlib(toyaccSpec, { channel: source, sessionId, journal: { path: join(dir, `journal-${sessionId}`) } });
  const api = lib.api;
  const device = ((await api.tq_get_devices!(1, true)).outs.devices as Handle[])[0]!;
  const context = (await api.tq_create_context!(1, [device])).ret as Handle;
  const queue = (await api.tq_create_queue!(context, device)).ret as Handle;
  const buffers: { handle: Handle; size: number }[] = [];
  for (const size of SIZES) {
    const handle = (await api.tq_create_buffer!(context, 0, size, null)).ret as Handle;
    await api.tq_enqueue_write!(queue, handle, 0, size, new Uint8Array(randomBytes(size)));
    buffers.push({ handle, size });
  }
  await api.tq_finish!(queue);
  await lib.journal!.flush();
  const plan = await planReplay(lib.journal!, { before: lib.session.callCount });
  const target = await connectSocketChannel({
    address: targetListener.address, spec: toyaccSpec, sessionId, ...(targetListener.token ? { token: targetListener.token } : {}),
  });
  await replayOnto(target, plan);
  return { lib, source, target, plan, queue, buffers };
}

async function closeScene(s: Scene): Promise<void> {
  await s.target.close();
  await s.lib.close();
}

/** Asserts that every state object holds the same bytes on both workers. */
async function assertSameState(s: Scene, what: string): Promise<void> {
  for (const id of s.plan.withState) {
    const [a, b] = await Promise.all([s.source.extractState(id), s.target.extractState(id)]);
    assert.is(b.byteLength, a.byteLength, `${what}: object ${id} size`);
    assert.ok(Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, `${what}: object ${id} bytes`);
  }
}

/** The error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<AvaError> {
  try {
    await p;
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `a coded error, got ${String(error)}`);
    return error as AvaError;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

test('whole objects go straight from worker to worker, in chunks of every size, and arrive intact', async () => {
  const s = await scene();
  try {
    const total = SIZES.reduce((a, b) => a + b, 0);
    for (const chunk of [CHUNK, 8 * 1024 * 1024]) {
      const stats = await moveState(s.source, s.target, wholeItems(s.plan.withState, s.plan.held), { chunkBytes: chunk });
      assert.ok(stats.direct, 'streamed worker to worker');
      assert.is(stats.objects, SIZES.length);
      assert.is(stats.bytes, total);
      await assertSameState(s, `chunks of ${chunk}`);
    }
  } finally {
    await closeScene(s);
  }
});

test('byte ranges go straight too: only they change on the target', async () => {
  const s = await scene();
  try {
    await moveState(s.source, s.target, wholeItems(s.plan.withState, s.plan.held), { chunkBytes: CHUNK });
    const big = s.buffers[0]!;
    // New bytes in two overlapping regions and one apart, written on the source after the first copy.
    const regions: [number, number][] = [[1000, 150_000], [100_000, 80_000], [290_000, 10_000]];
    for (const [offset, size] of regions) await s.lib.api.tq_enqueue_write!(s.queue, big.handle, offset, size, new Uint8Array(randomBytes(size)));
    await s.lib.api.tq_finish!(s.queue);
    const stats = await moveState(s.source, s.target, rangeItems([[big.handle.id, regions]], s.plan.held), { chunkBytes: CHUNK });
    assert.ok(stats.direct);
    assert.is(stats.bytes, 179_000 + 10_000, 'the merged ranges, once each');
    await assertSameState(s, 'after the ranges');
  } finally {
    await closeScene(s);
  }
});

test('intake tokens are one-time, forged ones and missing worker tokens are refused (ERR_AVA_AUTH)', async () => {
  const s = await scene();
  try {
    const items = wholeItems(s.plan.withState, s.plan.held);
    const intake = (await s.target.openStateIntake())!;
    assert.ok(intake.token, 'a tcp worker hands out its token with the intake');
    await s.source.sendState(intake, items, { chunkBytes: CHUNK });
    assert.is((await rejection(s.source.sendState(intake, items, { chunkBytes: CHUNK }))).code, 'ERR_AVA_AUTH', 'a used intake');
    assert.is((await rejection(s.source.sendState({ ...intake, intake: 'forged-intake-token' }, items, { chunkBytes: CHUNK }))).code, 'ERR_AVA_AUTH', 'a forged intake');
    const fresh = (await s.target.openStateIntake())!;
    const withoutToken: StateIntake = { address: fresh.address, intake: fresh.intake };
    assert.is((await rejection(s.source.sendState(withoutToken, items, { chunkBytes: CHUNK }))).code, 'ERR_AVA_AUTH', 'no worker token');
    // Both sessions still work.
    assert.is((await s.lib.api.tq_finish!(s.queue)).ret, 0);
    await s.target.barrier();
  } finally {
    await closeScene(s);
  }
});

/** A target channel whose intake names an address where nothing listens: the source cannot reach it. */
class UnreachableTarget extends ForwardingChannel {
  async openStateIntake(): Promise<StateIntake | undefined> {
    return { address: `unix:${join(dir, 'nobody-listens.sock')}`, intake: 'x' };
  }
}

test('a target the source cannot reach gets the state relayed through the guest', async () => {
  const s = await scene();
  try {
    const target: Channel = new UnreachableTarget(s.target);
    const stats = await moveState(s.source, target, wholeItems(s.plan.withState, s.plan.held), { chunkBytes: CHUNK });
    assert.not.ok(stats.direct, 'relayed');
    assert.is(stats.bytes, SIZES.reduce((a, b) => a + b, 0));
    await assertSameState(s, 'relayed');
    assert.is((await rejection(s.source.sendState(await target.openStateIntake!() as StateIntake, [], { chunkBytes: CHUNK }))).code, 'ERR_AVA_CONNECT');
  } finally {
    await closeScene(s);
  }
});

test('while the application runs on, objects it released meanwhile are skipped and named, on both routes', async () => {
  const s = await scene();
  try {
    const items = wholeItems(s.plan.withState, s.plan.held);
    const gone = s.buffers[1]!.handle;
    await s.lib.api.tq_release_buffer!(gone);
    await s.lib.session.channel.barrier();
    for (const target of [s.target, new UnreachableTarget(s.target)] as Channel[]) {
      const route = target === s.target ? 'direct' : 'relayed';
      assert.is((await rejection(moveState(s.source, target, items, { chunkBytes: CHUNK }))).code, 'ERR_AVA_STALE_HANDLE', `${route}: a released object fails a plain copy`);
      const stats = await moveState(s.source, target, items, { chunkBytes: CHUNK, skipReleased: true });
      assert.is(stats.direct, route === 'direct');
      assert.equal(stats.skipped, [gone.id], `${route}: the released buffer is named`);
      assert.is(stats.bytes, SIZES[0]! + SIZES[2]!, `${route}: the others are copied`);
    }
  } finally {
    await closeScene(s);
  }
});

/** Opens a raw state stream to the target worker with a fresh intake of `s`, past its welcome. */
async function rawStream(s: Scene): Promise<{ socket: Socket; next: () => Promise<Frame> }> {
  const intake = (await s.target.openStateIntake())!;
  const socket = await openSocket(targetListener.address);
  const reader = new FrameReader();
  const frames: Frame[] = [];
  const waiting: ((f: Frame) => void)[] = [];
  socket.on('data', (d: Buffer) => {
    for (const f of reader.push(d)) {
      const w = waiting.shift();
      if (w) w(f); else frames.push(f);
    }
  });
  const next = (): Promise<Frame> => (frames.length > 0 ? Promise.resolve(frames.shift()!) : new Promise((resolve) => waiting.push(resolve)));
  socket.write(encodeFrame({ t: 'stateHello', v: PROTOCOL_VERSION, intake: intake.intake, ...(intake.token ? { token: intake.token } : {}) }));
  assert.is((await next()).t, 'welcome');
  return { socket, next };
}

test('a chunk whose bytes differ from its checksum is refused (ERR_AVA_STATE_CHECKSUM); the worker goes on', async () => {
  const s = await scene();
  try {
    const { socket, next } = await rawStream(s);
    const bytes = randomBytes(1000);
    socket.write(encodeFrame({ t: 'stateChunk', id: s.buffers[0]!.handle.id, offset: 0, n: bytes.byteLength, crc: 12345 }));
    socket.write(bytes);
    const answer = await next();
    assert.is(answer.t, 'error');
    assert.is(answer.t === 'error' && answer.error.code, 'ERR_AVA_STATE_CHECKSUM');
    socket.destroy();
    await s.target.barrier();
    assert.is((await s.target.extractState(s.buffers[1]!.handle.id)).byteLength, 1, 'the target session still answers');
  } finally {
    await closeScene(s);
  }
});

test('a malformed frame or a chunk for an unknown object ends the stream with a coded error', async () => {
  const s = await scene();
  try {
    const bad = await rawStream(s);
    bad.socket.write(encodeFrame({ t: 'control', id: 1, op: 'ping' }));
    const first = await bad.next();
    assert.is(first.t === 'error' && first.error.code, 'ERR_AVA_BAD_FRAME');
    bad.socket.destroy();

    const unknown = await rawStream(s);
    unknown.socket.write(encodeFrame({ t: 'stateChunk', id: 9999, offset: 0, n: 4, crc: 0 }));
    unknown.socket.write(Buffer.from([1, 2, 3, 4]));
    const second = await unknown.next();
    assert.is(second.t === 'error' && second.error.code, 'ERR_AVA_UNKNOWN_HANDLE');
    unknown.socket.destroy();
    await s.target.barrier();
  } finally {
    await closeScene(s);
  }
});

uvuTest.run();
