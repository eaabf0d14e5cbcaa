/**
 * Replay errors (issue 6): a journal of another spec, a corrupt journal, and a target that fails a replayed call each
 * stop with a coded error (ERR_AVA_JOURNAL_SPEC, ERR_AVA_JOURNAL_CORRUPT, ERR_AVA_REPLAY_MISMATCH,
 * ERR_AVA_REPLAY_TARGET) that names what went wrong, and leave the journal as it was.
 *
 * node --import tsx test/replay/errors.test.ts
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { encodeRecord, formatKey, keys } from '../../journal/format.js';
import type { JournalRecord } from '../../journal/format.js';
import type { JournalDb } from '../../journal/journal.js';
import { Journal } from '../../journal/journal.js';
import { replayOnto } from '../../replay/executor.js';
import { planReplay } from '../../replay/plan.js';
import type { ReplayPlan } from '../../replay/plan.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import { defineSpec } from '../../src/spec/index.js';
import type { Channel } from '../../src/transport/channel.js';
import { LocalChannel } from '../../src/transport/local.js';
import { Worker } from '../../src/worker/worker.js';
import type { CallFrame, ReplyFrame } from '../../src/wire/frames.js';
import type { RecordedGuest } from './helpers.js';
import { openRecordedGuest, printable, rejection, snapshotFiles, snapshotStore, ForwardingChannel } from './helpers.js';

function test(name: string, body: () => unknown): void {
  uvuTest(name, async () => {
    try {
      await body();
    } catch (error) {
      throw printable(error);
    }
  });
}

const worker = await Worker.open({ spec: toyaccSpec });
const dirs: string[] = [];
const fnIndex = (name: string): number => toyaccSpec.functions.findIndex((f) => f.name === name);

/** toyacc with another version: same functions and library, another hash. */
const otherSpec = defineSpec({
  name: toyaccSpec.name, version: '2-test', library: toyaccSpec.library, status: toyaccSpec.status,
  handles: toyaccSpec.handles, functions: toyaccSpec.functions,
} as Parameters<typeof defineSpec>[0]);

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ava-replay-errors-'));
  dirs.push(dir);
  return dir;
}

function levelDb(dir: string): JournalDb {
  return new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb;
}

/** A small live session: context, queue, buffer with data, built program, kernel scale(buffer, 1.5). */
async function smallSession(guest: RecordedGuest): Promise<{ buffer: Handle }> {
  const { api } = guest;
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(2, devices)).ret as Handle;
  const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
  const buffer = (await api.tq_create_buffer!(ctx, TQ.MEM_COPY_HOST, 16, new Float32Array([1, 2, 3, 4]))).ret as Handle;
  const program = (await api.tq_create_program!(ctx, 'fill scale')).ret as Handle;
  assert.is((await api.tq_build_program!(program, null)).ret, TQ.SUCCESS);
  const kernel = (await api.tq_create_kernel!(program, 'scale')).ret as Handle;
  assert.is((await api.tq_set_kernel_arg!(kernel, 0, 8, buffer)).ret, TQ.SUCCESS);
  assert.is((await api.tq_set_kernel_arg!(kernel, 1, 4, new Float32Array([1.5]))).ret, TQ.SUCCESS);
  assert.is((await api.tq_enqueue_kernel!(queue, kernel, 4)).ret, TQ.SUCCESS);
  await guest.recording.journal.flush();
  return { buffer };
}

/** A recorded small session and its plan, on an in-memory journal. */
async function recorded(): Promise<{ guest: RecordedGuest; plan: ReplayPlan; buffer: Handle }> {
  const guest = await openRecordedGuest(toyaccSpec, worker);
  const { buffer } = await smallSession(guest);
  return { guest, plan: await planReplay(guest.recording.journal), buffer };
}

/** A fresh target worker session with the guest's session id. */
async function freshTarget(sessionId: string): Promise<{ channel: LocalChannel; close(): Promise<void> }> {
  const w = await Worker.open({ spec: toyaccSpec });
  const channel = await LocalChannel.open({ spec: toyaccSpec, worker: w, sessionId });
  return { channel, async close() { await channel.close(); await w.close(); } };
}

function assertCode(error: unknown, code: string, what: string): asserts error is AvaError {
  assert.ok(AvaError.isAvaError(error), `${what}: not an AvaError: ${String(error)}`);
  assert.is((error as AvaError).code, code, `${what}: ${(error as Error).message}`);
}

/** A copy of `plan` with record `index` changed by `change`. */
function altered(plan: ReplayPlan, index: number, change: (r: JournalRecord) => JournalRecord): ReplayPlan {
  return { ...plan, records: plan.records.map((r, i) => (i === index ? change(r) : r)) };
}

function indexOf(plan: ReplayPlan, fn: string, nth = 0): number {
  const i = plan.records.map((r, k) => [r, k] as const).filter(([r]) => toyaccSpec.functions[r.fn]!.name === fn)[nth]?.[1];
  assert.ok(i !== undefined, `the plan has no ${fn} #${nth}`);
  return i!;
}

// ------------------------------------------------------------------------------------------------ another spec

test('a journal of another spec is refused (ERR_AVA_JOURNAL_SPEC) and left as it was', async () => {
  const dir = tempDir();
  const guest = await openRecordedGuest(toyaccSpec, worker, { db: levelDb(dir) });
  await smallSession(guest);
  const before = await snapshotStore(guest.journal.db);
  await guest.close();

  const error = await rejection(Journal.open({ spec: otherSpec, path: dir }));
  assertCode(error, 'ERR_AVA_JOURNAL_SPEC', 'open with another spec');
  assert.equal(error.details.recorded, 'toyacc');
  // LevelDB rewrites its own files on every open (it recovers the log into a table), so the store's content is
  // compared, not its file bytes; and the store must be closed again (not left locked in this process).
  const again = await Journal.open({ spec: toyaccSpec, path: dir });
  try {
    assert.equal(await snapshotStore(again.db), before);
    assert.is(again.meta.hash, toyaccSpec.hash);
  } finally {
    await again.close();
  }
});

test('a plan is not replayed onto a worker that serves another spec', async () => {
  // Was a bug (fixed in 2412987): replayOnto never compares the plan's spec with the target's; a worker of another spec version replays the
  // calls by name as if nothing were wrong. The channel knows its worker's spec (hello/welcome carry name and hash).
  const { guest, plan } = await recorded();
  const otherWorker = await Worker.open({ spec: otherSpec });
  const target = await LocalChannel.open({ spec: otherSpec, worker: otherWorker, sessionId: guest.session.id });
  try {
    const error = await rejection(replayOnto(target, plan)).catch((e: Error) => e);
    assert.ok(AvaError.isAvaError(error) && ['ERR_AVA_JOURNAL_SPEC', 'ERR_AVA_REPLAY_TARGET'].includes(error.code),
      `replay of a ${plan.spec.name} ${plan.spec.hash.slice(0, 8)} plan onto a ${otherSpec.name} ${otherSpec.hash.slice(0, 8)} worker: ${error.message}`);
  } finally {
    await target.close();
    await otherWorker.close();
    await guest.close();
  }
});

// ------------------------------------------------------------------------------------------------ corrupt journals

/** Records the small session into a LevelDB journal in a new folder; returns it open, with the key of one record. */
async function levelJournal(): Promise<{ dir: string; journal: Journal; sessionId: string; key: Uint8Array; guest: RecordedGuest }> {
  const dir = tempDir();
  const guest = await openRecordedGuest(toyaccSpec, worker, { db: levelDb(dir) });
  await smallSession(guest);
  const sj = guest.recording.journal;
  const seq = [...sj.seqs].sort((a, b) => a - b)[4]!;
  return { dir, journal: guest.journal, sessionId: guest.session.id, key: keys.record(sj.n, seq), guest };
}

async function flipValue(db: JournalDb, key: Uint8Array, at = 10): Promise<void> {
  const value = (await db.get(key))!;
  const bad = Uint8Array.from(value);
  bad[at] ^= 0x40;
  await db.put(key, bad);
}

test('a damaged record: planReplay rejects with ERR_AVA_JOURNAL_CORRUPT naming its key; store and files unchanged', async () => {
  const { dir, journal, key, guest } = await levelJournal();
  try {
    await flipValue(journal.db, key);
    const store = await snapshotStore(journal.db);
    const files = snapshotFiles(dir);
    const error = await rejection(planReplay(guest.recording.journal));
    assertCode(error, 'ERR_AVA_JOURNAL_CORRUPT', 'plan');
    assert.is(error.details.key, formatKey(key));
    assert.equal(await snapshotStore(journal.db), store, 'store content unchanged');
    assert.equal(snapshotFiles(dir), files, 'file bytes unchanged');
  } finally {
    await guest.close();
  }
});

test('a damaged record found on reopening: the session load rejects naming it, and the record stays for inspection', async () => {
  const { dir, journal, key, sessionId, guest } = await levelJournal();
  await flipValue(journal.db, key);
  await guest.close();
  const reopened = await Journal.open({ spec: toyaccSpec, path: dir });
  try {
    const store = await snapshotStore(reopened.db);
    const error = await rejection(reopened.session(sessionId));
    assertCode(error, 'ERR_AVA_JOURNAL_CORRUPT', 'load');
    assert.is(error.details.key, formatKey(key));
    assert.equal(await snapshotStore(reopened.db), store, 'nothing repaired, deleted or skipped');
  } finally {
    await reopened.close();
  }
});

test('a record naming a function the spec does not have is reported as corrupt', async () => {
  // Was a bug (fixed in 2412987): a record with a valid checksum but a function index outside the spec reaches ObjectGraph.functionOf, which
  // throws a plain RangeError (no code, no key).
  const { journal, guest } = await levelJournal();
  const sj = guest.recording.journal;
  const seq = Math.max(...sj.seqs) + 100;
  const key = keys.record(sj.n, seq);
  await journal.db.put(key, encodeRecord({ seq, fn: 999, args: [], ret: 0, outs: null, t: 0 }));
  try {
    const error = await rejection(planReplay(sj));
    assertCode(error, 'ERR_AVA_JOURNAL_CORRUPT', 'plan');
    assert.is(error.details.key, formatKey(key));
  } finally {
    await guest.close();
  }
});

// Open (issue 5 note): a flipped byte in LevelDB's own log file can be dropped by LevelDB's recovery instead of
// being reported; each record value's checksum is checked (the tests above), LevelDB's log is not yet.

test('a damaged meta entry: Journal.open rejects with ERR_AVA_JOURNAL_CORRUPT and closes the store', async () => {
  // Was a bug (fixed in 2412987): Journal.open throws the JournalCorruptError of decodeValue(meta) without closing the store it opened, so the
  // folder stays locked by this process and the next open says ERR_AVA_JOURNAL_LOCKED.
  const { dir, journal, guest } = await levelJournal();
  await flipValue(journal.db, keys.meta, 6);
  await guest.close();
  assertCode(await rejection(Journal.open({ spec: toyaccSpec, path: dir })), 'ERR_AVA_JOURNAL_CORRUPT', 'first open');
  assertCode(await rejection(Journal.open({ spec: toyaccSpec, path: dir })), 'ERR_AVA_JOURNAL_CORRUPT', 'second open');
});

// Open (issue 5 note): corruption LevelDB itself detects in a damaged table is not yet mapped to
// ERR_AVA_JOURNAL_CORRUPT on every path (Journal.open).

// ------------------------------------------------------------------------------------------------ the target fails a replayed call

async function expectMismatch(plan: ReplayPlan, guest: RecordedGuest, index: number, check: (diff: { field: string; recorded: unknown; attempted: unknown }[]) => void, prepare?: (target: LocalChannel) => Promise<void>): Promise<void> {
  const store = await snapshotStore(guest.journal.db);
  const target = await freshTarget(guest.session.id);
  try {
    await prepare?.(target.channel);
    const error = await rejection(replayOnto(target.channel, plan));
    assertCode(error, 'ERR_AVA_REPLAY_MISMATCH', 'replay');
    const record = plan.records[index]!;
    assert.is(error.details.index, index, 'plan index');
    assert.is(error.details.seq, record.seq, 'seq');
    assert.is(error.details.fn, toyaccSpec.functions[record.fn]!.name, 'fn');
    const diff = error.details.diff as { field: string; recorded: unknown; attempted: unknown }[];
    assert.ok(diff.length > 0, 'a field-level difference');
    check(diff);
    assert.equal(await snapshotStore(guest.journal.db), store, 'journal untouched');
  } finally {
    await target.close();
  }
}

test('mismatch: a handle id already bound on the target (a posted create fails)', async () => {
  const { guest, plan: whole } = await recorded();
  try {
    // the target session already has the devices (so the plan starts after tq_get_devices) and an object under the
    // context's id
    assert.is(toyaccSpec.functions[whole.records[0]!.fn]!.name, 'tq_get_devices');
    const plan = { ...whole, records: whole.records.slice(1) };
    const index = indexOf(plan, 'tq_create_context');
    const contextId = plan.records[index]!.ret as number;
    await expectMismatch(plan, guest, index, (diff) => {
      assert.is(diff[0]!.field, 'error');
      assert.match(String(diff[0]!.attempted), /ERR_AVA_BAD_CALL/);
    }, async (channel) => {
      const devices = await channel.call({ seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null });
      assert.is(devices.ret, TQ.SUCCESS);
      const taken = await channel.call({ seq: 1, fn: 'tq_create_context', args: [1, [1], true], retId: contextId });
      assert.is(taken.ret, contextId);
    });
  } finally {
    await guest.close();
  }
});

test('mismatch: a kernel argument index the target refuses (posted call, ret differs)', async () => {
  const { guest, plan } = await recorded();
  try {
    const index = indexOf(plan, 'tq_set_kernel_arg', 1);
    const bad = altered(plan, index, (r) => ({ ...r, args: [r.args[0]!, 9, ...r.args.slice(2)] }));
    await expectMismatch(bad, guest, index, (diff) => {
      assert.equal(diff.find((d) => d.field === 'ret'), { field: 'ret', recorded: TQ.SUCCESS, attempted: TQ.INVALID_ARG_INDEX });
    });
  } finally {
    await guest.close();
  }
});

test('mismatch: a buffer of size 0 (posted create, errcode differs)', async () => {
  const { guest, plan } = await recorded();
  try {
    const index = indexOf(plan, 'tq_create_buffer');
    const bad = altered(plan, index, (r) => ({ ...r, args: [r.args[0]!, 0, 0, null, r.args[4]!] }));
    await expectMismatch(bad, guest, index, (diff) => {
      assert.ok(diff.some((d) => d.field === 'errcode_ret' && d.attempted === TQ.INVALID_VALUE), JSON.stringify(diff));
    });
  } finally {
    await guest.close();
  }
});

test('mismatch: a build the target fails (waited call)', async () => {
  const { guest, plan } = await recorded();
  try {
    const index = indexOf(plan, 'tq_build_program');
    const bad = altered(plan, index, (r) => ({ ...r, args: [r.args[0]!, '-O3'] }));
    await expectMismatch(bad, guest, index, (diff) => {
      assert.equal(diff, [{ field: 'ret', recorded: TQ.SUCCESS, attempted: TQ.BUILD_FAILURE }]);
    });
  } finally {
    await guest.close();
  }
});

// ------------------------------------------------------------------------------------------------ the target breaks

/** A channel that closes its inner channel just before its `after`-th call or post. */
class ClosingChannel extends ForwardingChannel {
  #count = 0;
  constructor(inner: Channel, readonly after: number, readonly on: 'call' | 'post') {
    super(inner);
  }
  #tick(kind: 'call' | 'post'): void {
    if (kind === this.on && ++this.#count === this.after) void this.inner.close();
  }
  override call(frame: CallFrame): Promise<ReplyFrame> {
    this.#tick('call');
    return super.call(frame);
  }
  override post(frames: readonly CallFrame[]): void {
    this.#tick('post');
    super.post(frames);
  }
}

test('the target\'s channel closes before a waited call: ERR_AVA_REPLAY_TARGET, journal untouched', async () => {
  const { guest, plan } = await recorded();
  const store = await snapshotStore(guest.journal.db);
  const target = await freshTarget(guest.session.id);
  try {
    const error = await rejection(replayOnto(new ClosingChannel(target.channel, 2, 'call'), plan));
    assertCode(error, 'ERR_AVA_REPLAY_TARGET', 'replay');
    assert.ok(AvaError.isAvaError(error.cause) && error.cause.code === 'ERR_AVA_CLOSED', 'caused by the closed channel');
    assert.equal(await snapshotStore(guest.journal.db), store);
  } finally {
    await target.close();
    await guest.close();
  }
});

test('the target\'s channel closes before a batch is posted: ERR_AVA_REPLAY_TARGET too', async () => {
  // Was a bug (fixed in 2412987): channel.post throws ClosedError synchronously and replayOnto does not wrap post() the way it wraps
  // call() and barrier(), so the raw ERR_AVA_CLOSED escapes instead of ERR_AVA_REPLAY_TARGET.
  const { guest, plan } = await recorded();
  const target = await freshTarget(guest.session.id);
  try {
    const error = await rejection(replayOnto(new ClosingChannel(target.channel, 1, 'post'), plan));
    assertCode(error, 'ERR_AVA_REPLAY_TARGET', 'replay');
  } finally {
    await target.close();
    await guest.close();
  }
});

test('a state the target refuses to restore (wrong size): ERR_AVA_REPLAY_TARGET', async () => {
  const { guest, plan, buffer } = await recorded();
  const target = await freshTarget(guest.session.id);
  try {
    const error = await rejection(replayOnto(target.channel, plan, { states: new Map([[buffer.id, new Uint8Array(3)]]) }));
    assertCode(error, 'ERR_AVA_REPLAY_TARGET', 'restore');
  } finally {
    await target.close();
    await guest.close();
  }
});

test('a good replay of the same plan succeeds (the failures above come from what was changed)', async () => {
  const { guest, plan, buffer } = await recorded();
  const target = await freshTarget(guest.session.id);
  try {
    const state = await guest.session.extractState(buffer.id);
    const result = await replayOnto(target.channel, plan, { states: new Map([[buffer.id, state]]) });
    assert.is(result.calls, plan.records.length);
    assert.is(result.restored, 1);
    assert.equal([...await target.channel.extractState(buffer.id)], [...state]);
    assert.equal([...new Float32Array(state.buffer, state.byteOffset, 4)], [1.5, 3, 4.5, 6]);
  } finally {
    await target.close();
    await guest.close();
  }
});

uvuTest.after(async () => {
  await worker.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

uvuTest.run();

