/**
 * What failover keeps and what it loses, case by case (migrate/failover.ts's top comment is the contract): a worker
 * process serving a unix session is killed (kill -9, and the test waits until it is gone); the next waiting call
 * rebuilds the session on a new worker from the journal and the last checkpoint.
 *
 * node --import tsx test/failover/semantics.test.ts
 */
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { defaultTarget } from '../../migrate/arm.js';
import { checkpoint, enableFailover } from '../../migrate/failover.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import type { Channel } from '../../src/transport/channel.js';
import type { Opened } from './helpers.js';
import { apiOf, codeOf, f32, killPid, killWorker, openToyacc, readFloats, readState, setUp, within, workerPid } from './helpers.js';

/** uvu cannot print an error whose `details` is an object (every AvaError): turn unexpected ones into plain errors. */
function test(name: string, body: () => Promise<void>): void {
  uvuTest(name, async () => {
    try {
      await within(90_000, name, body());
    } catch (error) {
      if (AvaError.isAvaError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`);
      throw error;
    }
  });
}

/** Runs `body` on a freshly opened guestlib and closes it (worker and journal folder) whatever happens. */
async function withLib(options: Parameters<typeof openToyacc>[0], body: (o: Opened) => Promise<void>): Promise<void> {
  const opened = await openToyacc(options);
  try {
    await body(opened);
  } finally {
    await opened.close();
  }
}

const iota = (n: number, scale = 1): number[] => Array.from({ length: n }, (_, i) => i * scale);
const quiet = (): void => undefined;

/**
 * A session with work before and after a checkpoint (when `cp`), the worker killed at the end:
 * - before: buffer A (16 floats 0..15), kernel `scale` on A by 2;
 * - after: A scaled (launch), buffer B created from host bytes (COPY_HOST), buffer C written, kernel `fill` on C.
 */
async function beforeAndAfter(o: Opened, cp: boolean) {
  const { lib } = o;
  const api = apiOf(lib);
  const s = await setUp(lib);
  const a = (await api.tq_create_buffer!(s.ctx, 0, 64, null)).ret as Handle;
  await api.tq_enqueue_write!(s.queue, a, 0, 64, f32(...iota(16)));
  const scale = (await api.tq_create_kernel!(s.program, 'scale')).ret as Handle;
  await api.tq_set_kernel_arg!(scale, 0, 8, a);
  await api.tq_set_kernel_arg!(scale, 1, 4, f32(2));
  await api.tq_finish!(s.queue);
  const cpCall = lib.session.callCount;
  const cpNumber = cp ? await checkpoint(lib.session, lib.journal!) : -1;
  await api.tq_enqueue_kernel!(s.queue, scale, 16);
  const hostBytes = Uint8Array.from(iota(32, 3), (v) => v & 0xff);
  const b = (await api.tq_create_buffer!(s.ctx, TQ.MEM_COPY_HOST, 32, hostBytes)).ret as Handle;
  const c = (await api.tq_create_buffer!(s.ctx, 0, 32, null)).ret as Handle;
  await api.tq_enqueue_write!(s.queue, c, 0, 32, f32(9, 9, 9, 9, 9, 9, 9, 9));
  const fill = (await api.tq_create_kernel!(s.program, 'fill')).ret as Handle;
  await api.tq_set_kernel_arg!(fill, 0, 8, c);
  await api.tq_set_kernel_arg!(fill, 1, 4, f32(7));
  await api.tq_finish!(s.queue);
  // Before the kill, everything is there.
  assert.equal(await readFloats(lib, s.queue, a, 16), iota(16, 2), 'A before the kill');
  assert.equal(await readFloats(lib, s.queue, c, 8), new Array(8).fill(9), 'C before the kill');
  const killedBefore = lib.session.callCount;
  await killWorker(lib);
  return { s, a, b, c, scale, fill, hostBytes, cpCall, cpNumber, killedBefore };
}

test('(a) without data journaling, with a checkpoint: the work after it is lost exactly as documented', async () => {
  await withLib({ failover: { data: false } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const r = await beforeAndAfter(o, true);
    // Buffer contents: as the checkpoint left them (the launch after it is lost).
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), iota(16), 'A is back at the checkpoint');
    const [report] = lib.failover!.reports;
    assert.is(lib.failover!.reports.length, 1);
    assert.is(report!.beforeCall, r.killedBefore);
    assert.is(report!.checkpoint, r.cpNumber);
    assert.is(report!.checkpointCall, r.cpCall);
    assert.is(report!.restoredObjects, 1, 'A, the one buffer at the checkpoint');
    // Objects created after the checkpoint exist; a COPY_HOST buffer has its host bytes; a written one is as created.
    assert.equal(await readState(lib, r.b, 32), [...r.hostBytes], 'B has its host bytes');
    assert.equal(await readFloats(lib, r.s.queue, r.c, 8), new Array(8).fill(0), 'C: the write after the checkpoint is lost');
    const size = new BigUint64Array(1);
    await api.tq_get_buffer_info!(r.b, TQ.BUFFER_SIZE, 8, size);
    assert.is(Number(size[0]), 32);
    // Configuration after the checkpoint is kept: `fill` has its arguments (C, 7) and runs.
    await api.tq_enqueue_kernel!(r.s.queue, r.fill, 8);
    assert.equal(await readFloats(lib, r.s.queue, r.c, 8), new Array(8).fill(7), 'fill ran with the arguments set after the checkpoint');
    // And `scale` still scales A from the checkpoint's contents.
    await api.tq_enqueue_kernel!(r.s.queue, r.scale, 16);
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), iota(16, 2));
    assert.is(lib.failover!.reports.length, 1);
  });
});

test('(a) without data journaling and without a checkpoint: buffers come back as their creation left them', async () => {
  await withLib({ failover: { data: false } }, async (o) => {
    const { lib } = o;
    const r = await beforeAndAfter(o, false);
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), new Array(16).fill(0), 'A: every write and launch lost');
    assert.equal(await readState(lib, r.b, 32), [...r.hostBytes], 'B has its host bytes');
    assert.is(lib.failover!.reports[0]!.checkpoint, -1);
  });
});

test('(b) with data journaling and no checkpoint at all: nothing is lost', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const r = await beforeAndAfter(o, false);
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), iota(16, 2), 'A: write and launch replayed');
    assert.equal(await readState(lib, r.b, 32), [...r.hostBytes], 'B');
    assert.equal(await readFloats(lib, r.s.queue, r.c, 8), new Array(8).fill(9), 'C: the write replayed');
    const [report] = lib.failover!.reports;
    assert.is(lib.failover!.reports.length, 1);
    assert.is(report!.checkpoint, -1);
    assert.is(report!.checkpointCall, -1);
    assert.is(report!.beforeCall, r.killedBefore);
    // The session goes on: the same kernels, on the rebuilt objects.
    await api.tq_enqueue_kernel!(r.s.queue, r.scale, 16);
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), iota(16, 4));
    await api.tq_enqueue_kernel!(r.s.queue, r.fill, 4);
    assert.equal(await readFloats(lib, r.s.queue, r.c, 8), [7, 7, 7, 7, 9, 9, 9, 9]);
  });
});

test('(b) with data journaling and a checkpoint: nothing is lost either', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const { lib } = o;
    const r = await beforeAndAfter(o, true);
    assert.equal(await readFloats(lib, r.s.queue, r.a, 16), iota(16, 2));
    assert.equal(await readFloats(lib, r.s.queue, r.c, 8), new Array(8).fill(9));
    assert.is(lib.failover!.reports[0]!.checkpoint, r.cpNumber);
    assert.is(lib.failover!.reports[0]!.checkpointCall, r.cpCall);
  });
});

test('(c) checkpointEvery: 5 writes checkpoints as calls go on, and recovery uses the newest', async () => {
  await withLib({ failover: { data: true, checkpointEvery: 5 } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const journal = lib.journal!;
    const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
    const ctx = (await api.tq_create_context!(2, devices)).ret as Handle;
    const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
    // A buffer before call 5, so that every checkpoint has state (see the test of an empty checkpoint below).
    const buf = (await api.tq_create_buffer!(ctx, 0, 64, null)).ret as Handle;
    const counts: number[] = [];
    const expected = new Float32Array(16);
    for (let i = 0; i < 22; i++) {
      expected[i % 16] = i + 1;
      await api.tq_enqueue_write!(queue, buf, 4 * (i % 16), 4, f32(i + 1));
      if (i % 4 === 3) {
        await api.tq_finish!(queue); // a waiting call: the checkpoints due so far are written
        counts.push((await journal.checkpoints()).length);
      }
    }
    await api.tq_finish!(queue);
    const numbers = await journal.checkpoints();
    counts.push(numbers.length);
    const calls = lib.session.callCount;
    assert.ok(numbers.length >= Math.floor(calls / 5) - 1, `${numbers.length} checkpoints in ${calls} calls`);
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!, `checkpoints only grow: ${counts}`);
    assert.ok(counts.at(-1)! > counts[0]!, `the number of checkpoints grows: ${counts}`);
    const newest = await journal.lastCheckpoint();
    assert.ok(newest, 'a newest checkpoint');
    assert.is(newest!.number, numbers.at(-1)!);
    await killWorker(lib);
    assert.equal(await readFloats(lib, queue, buf, 16), [...expected], 'nothing lost');
    assert.is(lib.failover!.reports.length, 1);
    const [report] = lib.failover!.reports;
    assert.is(report!.checkpoint, newest!.number, 'recovery used the newest checkpoint');
    assert.is(report!.checkpointCall, newest!.seq);
    assert.ok(report!.checkpointCall > calls - 10, `the newest checkpoint is recent (call ${report!.checkpointCall} of ${calls})`);
  });
});

test('(c) a checkpoint without any state (taken before the first buffer) is a checkpoint too', async () => {
  // journal.checkpoints() lists the checkpoints by their state chunks; one with no stateful object has only its info
  // entry, so lastCheckpoint() does not see it: recovery falls back to an older one (or none), and the next
  // checkpoint takes the same number again.
  await withLib({ failover: { data: true } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const s = await setUp(lib);
    const cpCall = lib.session.callCount;
    const number = await checkpoint(lib.session, lib.journal!);
    assert.is(number, 1);
    const buf = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_enqueue_write!(s.queue, buf, 0, 16, f32(1, 2, 3, 4));
    await api.tq_finish!(s.queue);
    assert.equal(await lib.journal!.checkpoints(), [1], 'journal.checkpoints() lists the checkpoint just written');
    const last = await lib.journal!.lastCheckpoint();
    assert.is(last?.seq, cpCall, 'lastCheckpoint() is the checkpoint just written');
    await killWorker(lib);
    assert.equal(await readFloats(lib, s.queue, buf, 4), [1, 2, 3, 4]);
    assert.is(lib.failover!.reports[0]!.checkpoint, 1, 'recovery used checkpoint 1');
    assert.is(lib.failover!.reports[0]!.checkpointCall, cpCall);
  });
});

test('(c) a checkpoint that falls due while the worker is dead does not stop recovery', async () => {
  await withLib({ failover: { data: true, checkpointEvery: 2 } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const errors: unknown[] = [];
    lib.session.onTaskError = (error) => { errors.push(error); };
    const s = await setUp(lib);
    const buf = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(s.queue);
    const before = (await lib.journal!.checkpoints()).length;
    await killWorker(lib);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Posted calls: each one makes a checkpoint due, on a dead worker.
    for (let i = 0; i < 4; i++) await api.tq_enqueue_write!(s.queue, buf, 4 * i, 4, f32(i + 1));
    assert.equal(await readFloats(lib, s.queue, buf, 4), [1, 2, 3, 4]);
    assert.is(lib.failover!.reports.length, 1);
    // Checkpoints go on after the recovery.
    for (let i = 0; i < 4; i++) await api.tq_finish!(s.queue);
    assert.ok((await lib.journal!.checkpoints()).length > before, 'checkpoints after the recovery');
    await killWorker(lib);
    assert.equal(await readFloats(lib, s.queue, buf, 4), [1, 2, 3, 4], 'after a second recovery from a newer checkpoint');
    assert.is(lib.failover!.reports.length, 2);
    assert.ok(lib.failover!.reports[1]!.checkpointCall > lib.failover!.reports[0]!.beforeCall, 'the second recovery used a checkpoint taken after the first');
  });
});

/** A kernel `axpy` (y += a * x) on two buffers of 8 floats, x = 1..8, y = 0; returns the pieces. */
async function axpySetup(o: Opened) {
  const api = apiOf(o.lib);
  const s = await setUp(o.lib);
  const x = (await api.tq_create_buffer!(s.ctx, TQ.MEM_COPY_HOST, 32, f32(1, 2, 3, 4, 5, 6, 7, 8))).ret as Handle;
  const y = (await api.tq_create_buffer!(s.ctx, 0, 32, null)).ret as Handle;
  const axpy = (await api.tq_create_kernel!(s.program, 'axpy')).ret as Handle;
  await api.tq_set_kernel_arg!(axpy, 1, 8, x);
  await api.tq_set_kernel_arg!(axpy, 2, 8, y);
  await api.tq_finish!(s.queue);
  return { ...s, x, y, axpy };
}

/** Posts: a = 2, y = 10 (write), launch (y = 12..26); a = 3, launch (y += 3x); no waiting call. */
function postBurst(o: Opened, r: Awaited<ReturnType<typeof axpySetup>>): Promise<unknown>[] {
  const api = apiOf(o.lib);
  return [
    api.tq_set_kernel_arg!(r.axpy, 0, 4, f32(2)),
    api.tq_enqueue_write!(r.queue, r.y, 0, 32, f32(10, 10, 10, 10, 10, 10, 10, 10)),
    api.tq_enqueue_kernel!(r.queue, r.axpy, 8),
    api.tq_set_kernel_arg!(r.axpy, 0, 4, f32(3)),
    api.tq_enqueue_kernel!(r.queue, r.axpy, 8),
  ];
}
const BURST_Y = [1, 2, 3, 4, 5, 6, 7, 8].map((x) => 10 + 2 * x + 3 * x);

test('(d) posted calls, then kill -9 in the same turn (their batch not yet sent), then a waiting call: not lost', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const r = await axpySetup(o);
    const before = o.lib.session.callCount;
    const posted = postBurst(o, r);
    const pid = workerPid(o.lib);
    const killed = killPid(pid); // SIGKILL sent now, before the batch goes out at the end of this turn
    await Promise.all(posted); // they resolve at once: they were posted
    await killed;
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), BURST_Y);
    assert.is(o.lib.failover!.reports.length, 1);
    assert.is(o.lib.failover!.reports[0]!.beforeCall, before + 5);
  });
});

test('(d) posted calls sent and run, then kill -9, then a waiting call: not lost', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const r = await axpySetup(o);
    await Promise.all(postBurst(o, r));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the batch went out and the worker ran it
    await killWorker(o.lib);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), BURST_Y);
    assert.is(o.lib.failover!.reports.length, 1);
  });
});

test('(d) kill -9 first, then posted calls (sent to a dead channel), then a waiting call: not lost', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const r = await axpySetup(o);
    await killWorker(o.lib);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the channel has seen its socket close
    await Promise.all(postBurst(o, r));
    await new Promise((resolve) => setImmediate(resolve)); // the batch was flushed into the dead channel
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), BURST_Y);
    assert.is(o.lib.failover!.reports.length, 1);
  });
});

test('(d) without data journaling, posted transfers and launches before the kill are lost (configuration is not)', async () => {
  await withLib({ failover: { data: false } }, async (o) => {
    const r = await axpySetup(o);
    await Promise.all(postBurst(o, r));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await killWorker(o.lib);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), new Array(8).fill(0), 'y as created');
    // The argument a = 3 (configuration) came back: one launch gives y = 3x.
    await apiOf(o.lib).tq_enqueue_kernel!(r.queue, r.axpy, 8);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), [1, 2, 3, 4, 5, 6, 7, 8].map((x) => 3 * x));
  });
});

test('(d) checkpoint() requested with posted calls issued in the same turn: those calls are not lost', async () => {
  // checkpoint() takes `session.callCount` when its task starts (a microtask later): calls posted in between get
  // seqs below the checkpoint's but are held back by its gate, so the checkpoint's state misses their effects and
  // recovery (which replays only records from the checkpoint's seq on) drops them.
  await withLib({ failover: { data: true } }, async (o) => {
    const r = await axpySetup(o);
    const cp = checkpoint(o.lib.session, o.lib.journal!);
    const posted = postBurst(o, r);
    await Promise.all([cp, ...posted]);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), BURST_Y, 'before the kill');
    await killWorker(o.lib);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), BURST_Y, 'after recovery');
  });
});

test('(d) checkpointEvery with a burst of posted calls across the checkpoint point: nothing lost', async () => {
  await withLib({ failover: { data: true, checkpointEvery: 3 } }, async (o) => {
    const r = await axpySetup(o);
    const posted = [...postBurst(o, r), ...postBurst(o, r)];
    await Promise.all(posted);
    const twice = [1, 2, 3, 4, 5, 6, 7, 8].map((x) => 10 + 2 * x + 3 * x);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), twice, 'before the kill');
    assert.ok((await o.lib.journal!.checkpoints()).length >= 2, 'checkpoints were written');
    await killWorker(o.lib);
    assert.equal(await readFloats(o.lib, r.queue, r.y, 8), twice, 'after recovery');
  });
});

test('(e) a second kill after a first recovery recovers again (two reports)', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const r = await axpySetup(o);
    await api.tq_set_kernel_arg!(r.axpy, 0, 4, f32(1));
    await api.tq_enqueue_kernel!(r.queue, r.axpy, 8); // y = x
    const first = workerPid(lib);
    await killWorker(lib);
    assert.equal(await readFloats(lib, r.queue, r.y, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
    const second = workerPid(lib);
    assert.is.not(second, first, 'a new worker');
    await api.tq_enqueue_kernel!(r.queue, r.axpy, 8); // y = 2x, after the first recovery
    await checkpoint(lib.session, lib.journal!);
    await api.tq_enqueue_kernel!(r.queue, r.axpy, 8); // y = 3x, after the checkpoint
    await killWorker(lib);
    assert.equal(await readFloats(lib, r.queue, r.y, 8), [3, 6, 9, 12, 15, 18, 21, 24]);
    assert.is(lib.failover!.reports.length, 2);
    assert.is.not(workerPid(lib), second);
    assert.is(lib.failover!.reports[1]!.checkpoint, 1);
    assert.ok(lib.failover!.reports[1]!.beforeCall > lib.failover!.reports[0]!.beforeCall);
    await api.tq_enqueue_kernel!(r.queue, r.axpy, 8);
    assert.equal(await readFloats(lib, r.queue, r.y, 8), [4, 8, 12, 16, 20, 24, 28, 32]);
  });
});

test('(e) several waiting calls in flight when the worker dies: one recovery, every call answered', async () => {
  await withLib({ failover: { data: true } }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const r = await axpySetup(o);
    await api.tq_set_kernel_arg!(r.axpy, 0, 4, f32(1));
    await api.tq_enqueue_kernel!(r.queue, r.axpy, 8); // y = x
    await api.tq_finish!(r.queue);
    await killWorker(lib);
    const reads = await within(30_000, 'concurrent reads', Promise.all([
      readFloats(lib, r.queue, r.x, 8), readFloats(lib, r.queue, r.y, 8), readFloats(lib, r.queue, r.y, 4),
    ]));
    assert.equal(reads, [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4]]);
    assert.is(lib.failover!.reports.length, 1);
  });
});

test('(f) without failover, a killed worker makes the next call reject with ERR_AVA_CHANNEL_CLOSED (no hang)', async () => {
  await withLib({ journal: false, failover: false }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const s = await setUp(lib);
    const buf = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(s.queue);
    assert.is(lib.failover, undefined);
    await killWorker(lib);
    const codes: string[] = [];
    const calls: (() => Promise<unknown>)[] = [() => api.tq_finish!(s.queue), () => readFloats(lib, s.queue, buf, 4), () => api.tq_get_devices!(2, true)];
    for (const call of calls) {
      try {
        await within<unknown>(10_000, 'a call to a dead worker', call());
        codes.push('resolved');
      } catch (error) {
        codes.push(codeOf(error));
      }
    }
    assert.equal(codes, ['ERR_AVA_CHANNEL_CLOSED', 'ERR_AVA_CHANNEL_CLOSED', 'ERR_AVA_CHANNEL_CLOSED']);
  });
});

test('(f) without failover, calls posted to a dead worker make the next waiting call reject (no hang)', async () => {
  await withLib({ journal: false, failover: false }, async (o) => {
    const api = apiOf(o.lib);
    const s = await setUp(o.lib);
    const buf = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(s.queue);
    await killWorker(o.lib);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await api.tq_enqueue_write!(s.queue, buf, 0, 16, f32(1, 2, 3, 4)); // posted: resolves at once
    await new Promise((resolve) => setImmediate(resolve));
    let code = 'resolved';
    try {
      await within(10_000, 'a waiting call after posted calls to a dead worker', api.tq_finish!(s.queue));
    } catch (error) {
      code = codeOf(error);
    }
    assert.ok(['ERR_AVA_CHANNEL_CLOSED', 'ERR_AVA_ASYNC_CALL_FAILED'].includes(code), code);
  });
});

test('(g) failover whose target cannot start rejects the call with ERR_AVA_FAILOVER_FAILED', async () => {
  await withLib({ failover: false }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    assert.ok(lib.journal, 'journaled');
    const failover = enableFailover(lib.session, lib.journal!, { openTarget: async () => { throw new Error('no worker'); }, log: quiet });
    const s = await setUp(lib);
    await api.tq_finish!(s.queue);
    await killWorker(lib);
    let caught: unknown;
    try {
      await within(10_000, 'the call after the kill', api.tq_finish!(s.queue));
    } catch (error) {
      caught = error;
    }
    assert.ok(caught, 'the call rejects');
    assert.is(codeOf(caught), 'ERR_AVA_FAILOVER_FAILED', `got ${codeOf(caught)}: ${(caught as Error).message}`);
    assert.is(failover.reports.length, 0);
  });
});

test('(g) failover whose rebuild fails (a target that dies) rejects with ERR_AVA_FAILOVER_FAILED; a later call recovers', async () => {
  await withLib({ failover: false }, async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const open = defaultTarget(lib.session);
    let attempts = 0;
    const failover = enableFailover(lib.session, lib.journal!, {
      log: quiet,
      openTarget: async () => {
        const channel: Channel = await open();
        // The first target closes before the rebuild: the replay fails (ERR_AVA_REPLAY_TARGET inside).
        if (attempts++ === 0) await channel.close();
        return channel;
      },
    });
    const s = await setUp(lib);
    const buf = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(s.queue);
    await killWorker(lib);
    let code = 'resolved';
    try {
      await within(30_000, 'the call after the kill', api.tq_finish!(s.queue));
    } catch (error) {
      code = codeOf(error);
    }
    assert.is(code, 'ERR_AVA_FAILOVER_FAILED');
    assert.is(failover.reports.length, 0);
    // The session is still lost; the next call tries again, with a target that works.
    await within(30_000, 'the retry', api.tq_finish!(s.queue));
    assert.is(failover.reports.length, 1);
    assert.equal(await readFloats(lib, s.queue, buf, 4), [0, 0, 0, 0]);
    assert.is(attempts, 2);
  });
});

uvuTest.run();
