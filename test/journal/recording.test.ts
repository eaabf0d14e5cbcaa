/**
 * Journals written by real toyacc sessions (journal/recorder.ts through `openGuestlib(..., { journal })`) over the
 * local channel, shm (worker thread) and unix (a private worker process): the records are exactly the journaled calls
 * (create, configure, retain, release, global) that succeeded, in seq order, with the ids the guest issued; failing
 * calls are absent; asynchronous calls that fail are retracted; `batch` durability has the records in the store when
 * a waiting call returns; and the object graph keeps a kernel's program, context and argument buffers live after the
 * application released them.
 *
 * node --import tsx test/journal/recording.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as uvuTest } from 'uvu';
import { boundedTest } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { CallResult } from '../../src/guest/call-shape.js';
import { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { ChannelKind } from '../../src/config.js';
import { decodeRecord, keys } from '../../journal/format.js';
import type { JournalRecord } from '../../journal/format.js';
import { inputHandles } from '../../journal/graph.js';
import { Journal } from '../../journal/journal.js';
import { JOURNALED } from '../../journal/recorder.js';
import { all } from './store-contract.js';

const TEST_TIMEOUT_MS = 60_000;
const root = mkdtempSync(join(tmpdir(), 'ava-journal-rec-'));
let folders = 0;
const folder = (): string => join(root, `j${folders++}`);
const opened = new Set<Guestlib>();
process.once('exit', () => rmSync(root, { recursive: true, force: true }));

/** Bounded tests that close every guestlib they opened. */
const test = boundedTest(TEST_TIMEOUT_MS, async () => {
  for (const lib of [...opened]) await lib.close().catch(() => undefined);
  opened.clear();
});

async function open(options: Parameters<typeof openGuestlib>[1]): Promise<Guestlib> {
  const lib = await openGuestlib(toyaccSpec, options);
  opened.add(lib);
  return lib;
}

type Api = Record<string, (...args: unknown[]) => Promise<CallResult>>;
const f32 = (v: number): Uint8Array => new Uint8Array(new Float32Array([v]).buffer);
const FN_INDEX = new Map(toyaccSpec.functions.map((f, i) => [f.name, i]));

/** What the journal must hold for one call. */
interface Expected {
  readonly seq: number;
  readonly fn: string;
  /** Ids of the handles the application passed, in argument order. */
  readonly handles: readonly number[];
  /** The created handle's id, or the status. */
  readonly ret: number | null;
}

/**
 * Runs calls in `return` status mode (every call waits) and keeps, for each call that the journal should hold
 * (a journaled record class, and success), what it must look like.
 */
class Tracker {
  readonly expected: Expected[] = [];
  readonly failures: { seq: number; fn: string }[] = [];
  constructor(readonly lib: Guestlib) {}

  async call(fn: string, ...args: unknown[]): Promise<CallResult> {
    const f = toyaccSpec.fn.get(fn)!;
    const seq = this.lib.session.callCount;
    const result = await (this.lib.api as Api)[fn]!(...args);
    assert.is(this.lib.session.callCount, seq + 1, `${fn} took one seq`);
    const ok = f.returns.role === 'handle' ? result.ret instanceof Handle && result.outs.errcode_ret === TQ.SUCCESS : result.ret === TQ.SUCCESS;
    if (!JOURNALED.has(f.record)) return result;
    if (!ok) {
      this.failures.push({ seq, fn });
      // A failed build changes the program (unbuilt, new log): the journal keeps it with its status.
      if (!(f.journalFailures ?? []).includes(result.ret as number)) return result;
    }
    const handles: number[] = [];
    for (const a of args) {
      if (a instanceof Handle) handles.push(a.id);
      else if (Array.isArray(a)) for (const h of a) if (h instanceof Handle) handles.push(h.id);
    }
    this.expected.push({ seq, fn, handles, ret: result.ret instanceof Handle ? result.ret.id : (result.ret as number) });
    return result;
  }
}

/** A program with failing calls of every journaled class, and calls that are never journaled. */
async function scriptedProgram(t: Tracker): Promise<void> {
  const devices = (await t.call('tq_get_devices', 2, true)).outs.devices as Handle[];
  const [d0, d1] = devices as [Handle, Handle];
  const ctx = (await t.call('tq_create_context', 2, devices)).ret as Handle;
  await t.call('tq_create_context', 2, [d0, d0]); // fails: the same device twice
  const q = (await t.call('tq_create_queue', ctx, d1)).ret as Handle;
  await t.call('tq_create_buffer', ctx, 0, 0, null); // fails: size 0
  const a = (await t.call('tq_create_buffer', ctx, 0, 64, null)).ret as Handle;
  const b = (await t.call('tq_create_buffer', ctx, TQ.MEM_COPY_HOST, 16, new Uint8Array(16).fill(3))).ret as Handle;
  await t.call('tq_retain_buffer', a);
  await t.call('tq_release_buffer', a);
  const p = (await t.call('tq_create_program', ctx, 'fill scale')).ret as Handle;
  await t.call('tq_build_program', p, '-O9'); // fails: unknown option
  await t.call('tq_build_program', p, '-O2');
  await t.call('tq_create_kernel', p, 'nope'); // fails: unknown kernel
  const k = (await t.call('tq_create_kernel', p, 'fill')).ret as Handle;
  await t.call('tq_set_kernel_arg', k, 5, 4, f32(1)); // fails: bad index
  await t.call('tq_set_kernel_arg', k, 0, 8, a);
  await t.call('tq_set_kernel_arg', k, 1, 4, f32(2));
  await t.call('tq_enqueue_kernel', q, k, 4); // execute: never journaled
  await t.call('tq_enqueue_write', q, b, 0, 4, f32(7)); // transfer: never journaled
  await t.call('tq_finish', q); // sync: never journaled
  await t.call('tq_get_buffer_info', a, TQ.BUFFER_REFCOUNT, 4, new Uint8Array(4)); // query: never journaled
  await t.call('tq_release_program', p);
  await t.call('tq_release_program', p); // fails: released
  await t.call('tq_release_context', ctx);
  await t.call('tq_retain_context', ctx); // fails: released
  await t.call('tq_release_buffer', a);
  await t.call('tq_release_kernel', k);
  await t.call('tq_release_queue', q);
  await t.call('tq_release_buffer', b);
}

function checkRecords(records: readonly JournalRecord[], t: Tracker): void {
  assert.ok(t.expected.length >= 15 && t.failures.length === 7, `the program ran as written (${t.expected.length} ok, ${t.failures.length} failed)`);
  assert.equal(records.map((r) => r.seq), t.expected.map((e) => e.seq), 'exactly the journaled calls that succeeded, in seq order');
  records.forEach((r, i) => {
    const e = t.expected[i]!;
    const f = toyaccSpec.functions[r.fn]!;
    assert.is(f.name, e.fn, `record ${r.seq}`);
    assert.is(r.fn, FN_INDEX.get(e.fn));
    assert.equal(inputHandles(f, r.args), e.handles, `record ${r.seq} (${e.fn}) names the guest's handle ids`);
    if (f.returns.role === 'handle') assert.is(r.ret, e.ret, `record ${r.seq} (${e.fn}) holds the created id`);
    else assert.is(r.ret, e.ret, `record ${r.seq} (${e.fn}) holds its status (a kept failure: its failing status)`);
    assert.ok(r.t > 1e12, 'a wall-clock time');
  });
  const devices = records.find((r) => toyaccSpec.functions[r.fn]!.name === 'tq_get_devices')!;
  assert.equal(devices.outs?.devices, [1, 2], 'tq_get_devices keeps the device ids the guest issued');
  const kept = new Set(t.expected.map((e) => e.seq));
  const failed = new Set(t.failures.filter((x) => !kept.has(x.seq)).map((x) => x.seq));
  assert.not.ok(records.some((r) => failed.has(r.seq)), 'no failed call is journaled, but for kept failures (builds)');
}

for (const transport of ['local', 'shm', 'unix'] as const satisfies readonly ChannelKind[]) {
  test(`${transport}: the records are exactly the journaled calls that succeeded, with the guest's ids`, async () => {
    const path = folder();
    const lib = await open({ transport, statusErrors: 'return', journal: { path } });
    const t = new Tracker(lib);
    await scriptedProgram(t);
    checkRecords(await all(lib.journal!.records()), t);
    assert.equal([...lib.journal!.graph.liveObjects()].sort(), [1, 2], 'everything released: only the devices stay live');
    const id = lib.session.id;
    await lib.close();
    opened.delete(lib);
    const j = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
    try {
      assert.equal((await j.sessions()).map((s) => s.id), [id]);
      checkRecords(await all((await j.session(id)).records()), t);
    } finally {
      await j.close();
    }
  });
}

test('two channels journal into one folder: each session has its own records', async () => {
  const path = folder();
  const local = await open({ transport: 'local', statusErrors: 'return', journal: { path } });
  const unix = await open({ transport: 'unix', statusErrors: 'return', journal: { path } });
  const tl = new Tracker(local);
  const tu = new Tracker(unix);
  await Promise.all([scriptedProgram(tl), scriptedProgram(tu)]);
  assert.ok(local.journal!.journal === unix.journal!.journal, 'one Journal per folder in a process');
  assert.is.not(local.journal!.n, unix.journal!.n);
  checkRecords(await all(local.journal!.records()), tl);
  checkRecords(await all(unix.journal!.records()), tu);
});

test('guestlibs opened at the same time on one journal get distinct session numbers', async () => {
  const path = folder();
  const libs = await Promise.all([0, 1, 2].map(() => open({ transport: 'local', journal: { path } })));
  const numbers = libs.map((l) => l.journal!.n);
  assert.is(new Set(numbers).size, 3, `session numbers ${numbers.join(', ')}: sessions that share a number write into each other's records`);
});

// ------------------------------------------------------------------------------------------------ asynchronous calls

/** Sets up a kernel `fill` with buffer `a` as argument 0 over a channel with asynchronous calls. */
async function asyncSetup(lib: Guestlib) {
  const api = lib.api as Api;
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
  const p = (await api.tq_create_program!(ctx, 'fill')).ret as Handle;
  await api.tq_build_program!(p, null);
  const k = (await api.tq_create_kernel!(p, 'fill')).ret as Handle;
  const a = (await api.tq_create_buffer!(ctx, 0, 64, null)).ret as Handle;
  await api.tq_set_kernel_arg!(k, 0, 8, a);
  const wait = () => api.tq_get_device_info!(devices[0], TQ.DEVICE_UNITS, 4, new Uint8Array(4));
  await wait();
  return { api, devices, ctx, p, k, a, wait };
}

async function asyncFailure(wait: () => Promise<unknown>): Promise<AvaError> {
  try {
    await wait();
  } catch (error) {
    if (AvaError.isAvaError(error) && error.code === 'ERR_AVA_ASYNC_CALL_FAILED') return error;
    throw error;
  }
  throw new Error('the failed asynchronous call was not reported');
}

test('unix: an asynchronous call that fails is retracted; the calls around it stay', async () => {
  const lib = await open({ transport: 'unix', journal: { path: folder() } });
  const { api, k, wait } = await asyncSetup(lib);
  const sj = lib.journal!;
  const before = lib.session.callCount;
  await api.tq_set_kernel_arg!(k, 1, 4, f32(1)); // posted: ok
  const bad = lib.session.callCount;
  const r = await api.tq_set_kernel_arg!(k, 9, 4, f32(1)); // posted: fails on the worker (bad index)
  assert.is(r.ret, TQ.SUCCESS, 'posted: the application sees the expected success');
  await api.tq_retain_kernel!(k); // posted: ok
  const e = await asyncFailure(wait);
  assert.is(e.details.seq, bad);
  assert.is(e.details.ret, TQ.INVALID_ARG_INDEX);
  await wait();
  const seqs = (await all(sj.records())).map((x) => x.seq);
  assert.ok(seqs.includes(before) && seqs.includes(bad + 1), 'the calls before and after are journaled');
  assert.not.ok(seqs.includes(bad), `the failed call #${bad} is retracted from the store`);
  assert.not.ok(sj.seqs.has(bad), 'and from the journal\'s seqs');
  assert.not.ok(sj.graph.liveRecords().includes(bad), 'and from the graph');
  assert.is(sj.graph.nodes.get(k.id)?.refs, 2, 'the retain counted');
});

test('unix: a failed asynchronous create is retracted with its object', async () => {
  const lib = await open({ transport: 'unix', journal: { path: folder() } });
  const { api, p, wait } = await asyncSetup(lib);
  const sj = lib.journal!;
  const seq = lib.session.callCount;
  const ghost = (await api.tq_create_kernel!(p, 'nope')).ret as Handle; // posted: a guest id, the worker fails
  await new Promise((r) => setTimeout(r, 50)); // let the journal write the record before the failure arrives
  await asyncFailure(wait);
  await wait();
  assert.not.ok((await all(sj.records())).some((x) => x.seq === seq), 'the failed create is not in the store');
  assert.not.ok(sj.graph.nodes.has(ghost.id), 'the graph has no object for it');
  assert.not.ok((await all(sj.objects())).some((o) => o.id === ghost.id), `no stored object ${ghost.id}: it never existed`);
});

test('unix: a failed asynchronous set_kernel_arg does not undo the argument it would have replaced', async () => {
  const lib = await open({ transport: 'unix', journal: { path: folder() } });
  const { api, k, a, wait } = await asyncSetup(lib);
  const sj = lib.journal!;
  await api.tq_set_kernel_arg!(k, 0, 4, f32(1)); // fails: a float for a buffer argument; argument 0 stays `a`
  await asyncFailure(wait);
  await api.tq_release_buffer!(a);
  await wait();
  // The worker still runs the kernel with `a` (toyacc keeps it for the kernel), so replay needs `a`.
  assert.ok(sj.graph.liveObjects().has(a.id), `buffer ${a.id} is live: kernel ${k.id} still holds it as argument 0`);
  await sj.compact();
  const left = await all(sj.records());
  assert.ok(left.some((r) => r.ret === a.id && toyaccSpec.functions[r.fn]!.name === 'tq_create_buffer'), 'its create survives compaction');
});

test('durability batch: when a waiting call returns, every record before it is in the store (unix, 4000 posted calls)', async () => {
  const lib = await open({ transport: 'unix', journal: { path: folder(), durability: 'batch' } });
  const { api, a, wait } = await asyncSetup(lib);
  const sj = lib.journal!;
  const first = lib.session.callCount;
  for (let i = 0; i < 2000; i++) {
    void api.tq_retain_buffer!(a);
    void api.tq_release_buffer!(a);
  }
  const last = lib.session.callCount - 1;
  await wait();
  // Read the store directly (LevelDB is locked per process: through the same Journal's db).
  const stored = new Set<number>();
  for await (const [key, value] of sj.journal.db.iterator(keys.records(sj.n))) stored.add(decodeRecord(key, value).seq);
  const missing: number[] = [];
  for (let seq = first; seq <= last; seq++) if (!stored.has(seq)) missing.push(seq);
  assert.equal(missing.slice(0, 10), [], `${missing.length} records of calls before the waiting call are not in the store`);
});

test('durability batch on the local channel: a waiting journaled call finds itself and its predecessors stored', async () => {
  const lib = await open({ transport: 'local', journal: { path: folder(), durability: 'batch' } });
  const api = lib.api as Api;
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
  const seq = lib.session.callCount;
  await api.tq_retain_context!(ctx);
  const sj = lib.journal!;
  const got = await sj.journal.db.get(keys.record(sj.n, seq));
  assert.ok(got !== undefined, `record ${seq} is in the store when the call returns`);
  assert.is(decodeRecord(keys.record(sj.n, seq), got!).seq, seq);
});

test('a record holds the bytes as they were at the call: the program may reuse its array once the call returned', async () => {
  // Durability none: the call returns before its record is written (batch would wait for it).
  const lib = await open({ transport: 'local', statusErrors: 'return', journal: { path: folder(), durability: 'none' } });
  const api = lib.api as Api;
  const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
  const host = new Uint8Array(32).fill(7);
  const seq = lib.session.callCount;
  await api.tq_create_buffer!(ctx, TQ.MEM_COPY_HOST, 32, host);
  host.fill(9); // before the journal's batch is written (an immediate later)
  const sj = lib.journal!;
  await sj.flush();
  const got = await sj.journal.db.get(keys.record(sj.n, seq));
  assert.ok(got !== undefined, `record ${seq} is stored`);
  const args = decodeRecord(keys.record(sj.n, seq), got!).args;
  assert.equal(Array.from(args[3] as Uint8Array), new Array(32).fill(7), 'the bytes the call was made with');
});

// ------------------------------------------------------------------------------------------------ the object graph

test('graph: a kernel keeps its program, context and argument buffers live after their release, until it is released', async () => {
  const lib = await open({ transport: 'local', journal: { path: folder() } });
  const api = lib.api as Api;
  const sj = lib.journal!;
  const liveCount = async () => (await api.tq_debug_live_objects!()).ret as number;
  const base = await liveCount();
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
  const q = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
  const p = (await api.tq_create_program!(ctx, 'axpy')).ret as Handle;
  await api.tq_build_program!(p, '');
  const k = (await api.tq_create_kernel!(p, 'axpy')).ret as Handle;
  const x = (await api.tq_create_buffer!(ctx, 0, 16, null)).ret as Handle;
  const y = (await api.tq_create_buffer!(ctx, 0, 16, null)).ret as Handle;
  const unused = (await api.tq_create_buffer!(ctx, 0, 16, null)).ret as Handle;
  await api.tq_set_kernel_arg!(k, 0, 4, f32(2));
  await api.tq_set_kernel_arg!(k, 1, 8, x);
  await api.tq_set_kernel_arg!(k, 2, 8, y);
  for (const h of [x, y, unused]) await api.tq_release_buffer!(h);
  await api.tq_release_program!(p);
  await api.tq_release_queue!(q);
  await api.tq_release_context!(ctx);
  // Natively the kernel still works and its parents still exist: kernel, program, context, x, y.
  assert.is(await liveCount() - base, 5, 'toyacc keeps kernel, program, context, x and y');
  const live = sj.graph.liveObjects();
  for (const h of [ctx, p, k, x, y]) assert.ok(live.has(h.id), `${h} is live`);
  for (const h of [q, unused]) assert.not.ok(live.has(h.id), `${h} is dead`);
  await sj.compact();
  const kept = (await all(sj.records())).map((r) => toyaccSpec.functions[r.fn]!.name);
  assert.ok(kept.includes('tq_build_program') && kept.filter((n) => n === 'tq_set_kernel_arg').length === 3, `kept: ${kept.join(', ')}`);
  assert.not.ok(kept.includes('tq_create_queue'), 'the queue is compacted away');

  await api.tq_release_kernel!(k);
  assert.is(await liveCount(), base, 'natively everything is gone');
  assert.equal([...sj.graph.liveObjects()].sort(), devices.map((d) => d.id).sort(), 'the graph agrees: only the devices');
  await sj.compact();
  assert.equal((await all(sj.records())).map((r) => toyaccSpec.functions[r.fn]!.name), ['tq_get_devices']);
  assert.equal((await all(sj.objects())).map((o) => o.kind), ['device', 'device']);
});

uvuTest.run();
