/**
 * Compaction of a data journal (failover with `data: true`): SessionJournal.compact() may delete what recovery no
 * longer needs: records before the last checkpoint that the checkpoint's state makes useless (dead objects, superseded
 * configuration, transfers and launches). Recovery rebuilds the live closure of the records before the checkpoint,
 * restores the checkpoint, then replays every record from the checkpoint on: those must all survive compaction, and
 * so must the records before the checkpoint that are live *at* the checkpoint, so that a worker killed after
 * compaction still loses nothing.
 *
 * node --import tsx test/failover/compaction.test.ts
 */
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import type { JournalRecord } from '../../journal/format.js';
import { Journal } from '../../journal/journal.js';
import type { SessionJournal } from '../../journal/journal.js';
import { checkpoint } from '../../migrate/failover.js';
import { planFromRecords } from '../../replay/plan.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Handle } from '../../src/guest/handle.js';
import type { Opened } from './helpers.js';
import { apiOf, codeOf, f32, killPid, killWorker, openToyacc, readFloats, setUp, within, workerPid } from './helpers.js';

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

async function withLib(body: (o: Opened) => Promise<void>): Promise<void> {
  const opened = await openToyacc({ failover: { data: true } });
  try {
    await body(opened);
  } finally {
    await opened.close();
  }
}

async function recordsOf(journal: SessionJournal): Promise<JournalRecord[]> {
  await journal.flush();
  const out: JournalRecord[] = [];
  for await (const r of journal.records()) out.push(r);
  return out;
}

const seqsOf = (records: readonly JournalRecord[]): number[] => records.map((r) => r.seq);
const iota = (n: number, scale = 1): number[] => Array.from({ length: n }, (_, i) => i * scale);

/**
 * The common prefix: buffer A (0..15), a dead buffer D (created, written, released), kernel `scale` on A with its
 * factor set twice (2, then 3: the first superseded), launched once (A = 3i). Returns the seqs of interest.
 */
async function prefix(o: Opened) {
  const { lib } = o;
  const api = apiOf(lib);
  const at = (): number => lib.session.callCount;
  const s = await setUp(lib);
  const aSeq = at();
  const a = (await api.tq_create_buffer!(s.ctx, 0, 64, null)).ret as Handle;
  const writeA = at();
  await api.tq_enqueue_write!(s.queue, a, 0, 64, f32(...iota(16)));
  const dSeqs = [at(), at() + 1, at() + 2];
  const d = (await api.tq_create_buffer!(s.ctx, 0, 16, null)).ret as Handle;
  await api.tq_enqueue_write!(s.queue, d, 0, 16, f32(1, 1, 1, 1));
  await api.tq_release_buffer!(d);
  const kSeq = at();
  const k = (await api.tq_create_kernel!(s.program, 'scale')).ret as Handle;
  const arg0 = at();
  await api.tq_set_kernel_arg!(k, 0, 8, a);
  const superseded = at();
  await api.tq_set_kernel_arg!(k, 1, 4, f32(2));
  const factor = at();
  await api.tq_set_kernel_arg!(k, 1, 4, f32(3));
  const launch = at();
  await api.tq_enqueue_kernel!(s.queue, k, 16);
  await api.tq_finish!(s.queue);
  return { s, a, k, seqs: { setup: [0, 1, 2, 3, 4], aSeq, writeA, dSeqs, kSeq, arg0, superseded, factor, launch } };
}

/** Takes a checkpoint; returns the call before which it was taken. */
async function takeCheckpoint(o: Opened): Promise<number> {
  const seq = o.lib.session.callCount;
  await checkpoint(o.lib.session, o.lib.journal!);
  const last = await o.lib.journal!.lastCheckpoint();
  assert.is(last?.seq, seq, 'the checkpoint is the last one');
  return seq;
}

/** Kills the worker, then reads A (16 floats) through a waiting call; the failover's error code if it fails. */
async function killAndRead(o: Opened, queue: Handle, a: Handle): Promise<number[] | string> {
  await killWorker(o.lib);
  try {
    return await within(30_000, 'the read after the kill', readFloats(o.lib, queue, a, 16));
  } catch (error) {
    return `${codeOf(error)}: ${(error as Error).message}`;
  }
}

test('compact() deletes the dead records before the last checkpoint', async () => {
  await withLib(async (o) => {
    const journal = o.lib.journal!;
    const p = await prefix(o);
    const cp = await takeCheckpoint(o);
    await apiOf(o.lib).tq_finish!(p.s.queue);
    const before = seqsOf(await recordsOf(journal));
    // Data journaling recorded the transfers and launches.
    for (const seq of [p.seqs.writeA, p.seqs.launch, ...p.seqs.dSeqs]) assert.ok(before.includes(seq), `record ${seq} was journaled`);
    const result = await journal.compact();
    const after = seqsOf(await recordsOf(journal));
    const deleted = before.filter((s) => !after.includes(s));
    // Dead before the checkpoint: D (create, write, release), the superseded factor, the transfer and the launch
    // (their effect is in the checkpoint's state of A).
    const dead = [...p.seqs.dSeqs, p.seqs.superseded, p.seqs.writeA, p.seqs.launch].sort((x, y) => x - y);
    for (const seq of dead) assert.ok(deleted.includes(seq), `dead record ${seq} deleted (deleted: ${deleted})`);
    // Live: the setup, A, the kernel and its current arguments.
    for (const seq of [...p.seqs.setup, p.seqs.aSeq, p.seqs.kSeq, p.seqs.arg0, p.seqs.factor]) assert.ok(after.includes(seq), `live record ${seq} kept`);
    assert.ok(deleted.every((s) => s < cp), 'nothing after the checkpoint deleted');
    assert.is(result.recordsDeleted, deleted.length);
    assert.is(result.recordsBefore, before.length);
    assert.ok(result.bytesAfter < result.bytesBefore, `${result.bytesAfter} < ${result.bytesBefore}`);
    assert.is(result.objectsDeleted, 1, 'D');
  });
});

test('compact() keeps every record from the last checkpoint on (the first call after it included)', async () => {
  await withLib(async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const p = await prefix(o);
    const cp = await takeCheckpoint(o);
    // The call right after the checkpoint is a write (its record has seq === the checkpoint's seq).
    await api.tq_enqueue_write!(p.s.queue, p.a, 0, 16, f32(100, 101, 102, 103));
    const e = (await api.tq_create_buffer!(p.s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_enqueue_write!(p.s.queue, e, 0, 16, f32(5, 5, 5, 5));
    await api.tq_release_buffer!(e); // E is dead, but after the checkpoint
    await api.tq_set_kernel_arg!(p.k, 1, 4, f32(0.5));
    await api.tq_set_kernel_arg!(p.k, 1, 4, f32(0.25)); // supersedes the one above, after the checkpoint
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16);
    await api.tq_finish!(p.s.queue);
    const before = await recordsOf(lib.journal!);
    await lib.journal!.compact();
    const after = seqsOf(await recordsOf(lib.journal!));
    const fromCheckpoint = seqsOf(before).filter((s) => s >= cp);
    assert.ok(fromCheckpoint.length >= 7, `records after the checkpoint: ${fromCheckpoint}`);
    assert.equal(fromCheckpoint.filter((s) => !after.includes(s)), [], `records from the checkpoint (call ${cp}) on deleted by compaction`);
  });
});

test('compact() keeps the records before the checkpoint that are live at the checkpoint', async () => {
  // Recovery replays planFromRecords(records before the checkpoint): objects and configuration live at the
  // checkpoint must still be there, even when they die or are superseded after it.
  await withLib(async (o) => {
    const { lib } = o;
    const api = apiOf(lib);
    const p = await prefix(o);
    const fSeq = lib.session.callCount;
    const f = (await api.tq_create_buffer!(p.s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(p.s.queue);
    const cp = await takeCheckpoint(o);
    await api.tq_enqueue_write!(p.s.queue, f, 0, 16, f32(4, 3, 2, 1)); // F used after the checkpoint...
    await api.tq_release_buffer!(f); // ...then released
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // with the factor set before the checkpoint...
    await api.tq_set_kernel_arg!(p.k, 1, 4, f32(0.5)); // ...which is superseded only now
    await api.tq_finish!(p.s.queue);
    const before = await recordsOf(lib.journal!);
    const needed = seqsOf(planFromRecords(toyaccSpec, before.filter((r) => r.seq < cp)).records);
    assert.ok(needed.includes(fSeq) && needed.includes(p.seqs.factor), `the checkpoint's live closure: ${needed}`);
    await lib.journal!.compact();
    const after = seqsOf(await recordsOf(lib.journal!));
    assert.equal(needed.filter((s) => !after.includes(s)), [], 'records of the checkpoint\'s live closure deleted by compaction');
  });
});

test('recovery after compaction loses nothing: work after the checkpoint only', async () => {
  await withLib(async (o) => {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    await takeCheckpoint(o);
    await api.tq_finish!(p.s.queue); // not journaled: no record at the checkpoint's seq
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // A = 9i
    await api.tq_enqueue_write!(p.s.queue, p.a, 0, 8, f32(-1, -2));
    await api.tq_finish!(p.s.queue);
    const expected = [-1, -2, ...iota(16, 9).slice(2)];
    assert.equal(await readFloats(o.lib, p.s.queue, p.a, 16), expected, 'before the kill');
    const result = await o.lib.journal!.compact();
    assert.ok(result.recordsDeleted > 0, 'compaction deleted something');
    assert.equal(await killAndRead(o, p.s.queue, p.a), expected);
    assert.is(o.lib.failover!.reports.length, 1);
  });
});

test('recovery after compaction loses nothing: a write right at the checkpoint', async () => {
  await withLib(async (o) => {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    await takeCheckpoint(o);
    await api.tq_enqueue_write!(p.s.queue, p.a, 0, 16, f32(100, 101, 102, 103));
    await api.tq_finish!(p.s.queue);
    const expected = [100, 101, 102, 103, ...iota(16, 3).slice(4)];
    await o.lib.journal!.compact();
    assert.equal(await killAndRead(o, p.s.queue, p.a), expected);
  });
});

test('recovery after compaction loses nothing: a buffer live at the checkpoint, used and released after it', async () => {
  await withLib(async (o) => {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    const f = (await api.tq_create_buffer!(p.s.ctx, 0, 16, null)).ret as Handle;
    await api.tq_finish!(p.s.queue);
    await takeCheckpoint(o);
    await api.tq_finish!(p.s.queue);
    await api.tq_enqueue_write!(p.s.queue, f, 0, 16, f32(4, 3, 2, 1));
    await api.tq_release_buffer!(f);
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // A = 9i
    await api.tq_finish!(p.s.queue);
    await o.lib.journal!.compact();
    assert.equal(await killAndRead(o, p.s.queue, p.a), iota(16, 9));
  });
});

test('recovery after compaction loses nothing: a kernel argument set before the checkpoint, superseded after a launch', async () => {
  await withLib(async (o) => {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    await takeCheckpoint(o);
    await api.tq_finish!(p.s.queue);
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // factor 3 (set before the checkpoint): A = 9i
    await api.tq_set_kernel_arg!(p.k, 1, 4, f32(0.5));
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // A = 4.5i
    await api.tq_finish!(p.s.queue);
    await o.lib.journal!.compact();
    assert.equal(await killAndRead(o, p.s.queue, p.a), iota(16, 4.5));
  });
});

test('compact() of a reopened data journal (ava-journal compact) keeps every record from the last checkpoint on', async () => {
  // #dataRecords and #checkpointSeq live in memory only: a SessionJournal loaded from the store knows neither.
  const o = await openToyacc({ failover: { data: true } });
  let reopened: Journal | undefined;
  try {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    const cp = await takeCheckpoint(o);
    await api.tq_finish!(p.s.queue);
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16);
    await api.tq_enqueue_write!(p.s.queue, p.a, 0, 8, f32(-1, -2));
    await api.tq_finish!(p.s.queue);
    const id = o.lib.session.id;
    const fromCheckpoint = seqsOf(await recordsOf(o.lib.journal!)).filter((s) => s >= cp);
    assert.equal(fromCheckpoint.length, 2, 'the launch and the write');
    // End the session (the journal is closed when its last user lets go), then open the journal again.
    await killPid(workerPid(o.lib));
    await within(15_000, 'closing the guestlib', o.lib.close());
    reopened = await Journal.open({ spec: toyaccSpec, path: o.dir });
    const sj = await reopened.session(id);
    assert.ok((await sj.checkpoints()).length >= 1, 'the checkpoint is in the store');
    await sj.compact();
    const after = seqsOf(await recordsOf(sj));
    assert.equal(fromCheckpoint.filter((s) => !after.includes(s)), [], 'records after the checkpoint deleted by compaction of the reopened journal');
    // And the data of the records before the checkpoint is gone as it should be.
    assert.ok(!after.includes(p.seqs.writeA), 'the write before the checkpoint is dead');
  } finally {
    await reopened?.close().catch(() => undefined);
    await o.close();
  }
});

test('without a checkpoint, compact() of a data journal deletes nothing that recovery replays', async () => {
  await withLib(async (o) => {
    const api = apiOf(o.lib);
    const p = await prefix(o);
    await api.tq_enqueue_kernel!(p.s.queue, p.k, 16); // A = 9i
    await api.tq_finish!(p.s.queue);
    const before = seqsOf(await recordsOf(o.lib.journal!));
    await o.lib.journal!.compact();
    const after = seqsOf(await recordsOf(o.lib.journal!));
    // With no checkpoint, recovery replays every record from the first: a superseded argument set before a launch
    // and the transfers are all needed.
    for (const seq of [p.seqs.writeA, p.seqs.superseded, p.seqs.launch]) assert.ok(after.includes(seq), `record ${seq} kept`);
    assert.ok(after.length <= before.length);
    assert.equal(await killAndRead(o, p.s.queue, p.a), iota(16, 9));
    assert.is(o.lib.failover!.reports[0]!.checkpoint, -1);
    const live = (await api.tq_debug_live_objects!()).ret;
    assert.is(live, 5, 'context, queue, program, A, kernel (nothing of D)');
  });
});

uvuTest.run();
