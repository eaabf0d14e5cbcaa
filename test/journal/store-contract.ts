/**
 * The one journal store contract. Every store the journal runs on (LevelDB, memory-level, any abstract-level store)
 * runs this suite in one line:
 *
 * ```ts
 * journalContract('memory', async () => new MemoryLevel({ keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb);
 * ```
 *
 * `openDb` must give a new, empty store each time it is called (not yet opened, or open). The suite closes it through
 * {@link Journal.close}, and reopens the very same object where it checks that a reopened journal keeps everything;
 * a store must keep its data across close/open (LevelDB on disk; memory-level keeps it in the instance).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import { defineSpec } from '../../src/spec/index.js';
import type { WireValue } from '../../src/wire/frames.js';
import type { JournalRecord } from '../../journal/format.js';
import { FORMAT_VERSION, decodeValue, encodeValue, formatKey, keys } from '../../journal/format.js';
import { Journal } from '../../journal/journal.js';
import type { JournalDb, JournalMeta } from '../../journal/journal.js';

/** Options of {@link journalContract}. */
export interface JournalContractOptions {
  /** Runs once after the suite (remove temporary folders here). */
  readonly after?: () => Promise<void> | void;
}

const FN = new Map(toyaccSpec.functions.map((f, i) => [f.name, i]));

/** A record of toyacc function `fn` (wire values as the guest sends them). */
export function rec(seq: number, fn: string, args: readonly WireValue[], ret: WireValue = 0, outs: JournalRecord['outs'] = null): JournalRecord {
  const index = FN.get(fn);
  if (index === undefined) throw new Error(`toyacc has no ${fn}`);
  return { seq, fn: index, args, ret, outs, t: 1_700_000_000_000 + seq + 0.25 };
}

/** Byte strings come back as Buffers (cbor-x): compare records with plain Uint8Arrays. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

/** Asserts that `work` rejects with an ava-migrate error of `code`; returns it. */
export async function rejectsWith(work: Promise<unknown> | (() => unknown), code: string): Promise<AvaError> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    if (!AvaError.isAvaError(error)) throw new Error(`expected ${code}, got a non-ava error: ${String(error)}`);
    assert.is(error.code, code, error.message);
    return error;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** Collects an async iterable. */
export async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** toyacc with another version: same name, another hash. */
const otherVersion = defineSpec({
  name: toyaccSpec.name, version: `${toyaccSpec.version}-other`, library: toyaccSpec.library, status: toyaccSpec.status,
  handles: toyaccSpec.handles, functions: toyaccSpec.functions,
});
/** Another API altogether. */
const otherName = defineSpec({
  name: 'toyacc-other', version: '1', library: toyaccSpec.library, status: toyaccSpec.status,
  handles: toyaccSpec.handles, functions: toyaccSpec.functions,
});

/**
 * A small session: devices 1 and 2, context 3, buffers 4 (released: dead) and 5 (released, but an argument of kernel
 * 8: live), program 6 (released after building: live through kernel 8), kernel 8 (live), kernel 7 released (dead),
 * argument 1 of kernel 8 set twice (the first is superseded).
 */
export const SAMPLE: readonly JournalRecord[] = [
  rec(0, 'tq_get_devices', [2, [1, 2], true], 0, { devices: [1, 2] }),
  rec(1, 'tq_create_context', [2, [1, 2], true], 3),
  rec(2, 'tq_create_buffer', [3, 0, 64, null, true], 4),
  rec(3, 'tq_create_buffer', [3, 1, 4, new Uint8Array([1, 2, 3, 4]), true], 5),
  rec(4, 'tq_release_buffer', [4]),
  rec(5, 'tq_create_program', [3, 'fill scale', true], 6),
  rec(6, 'tq_build_program', [6, '-O2']),
  rec(7, 'tq_create_kernel', [6, 'fill', true], 7),
  rec(8, 'tq_create_kernel', [6, 'scale', true], 8),
  rec(9, 'tq_set_kernel_arg', [8, 0, 8, { handle: 5 }]),
  rec(10, 'tq_set_kernel_arg', [8, 1, 4, new Uint8Array([0, 0, 0, 63])]),
  rec(11, 'tq_set_kernel_arg', [8, 1, 4, new Uint8Array([0, 0, 128, 63])]),
  rec(12, 'tq_release_kernel', [7]),
  rec(13, 'tq_release_buffer', [5]),
  rec(14, 'tq_retain_program', [6]),
  rec(15, 'tq_release_program', [6]),
  rec(16, 'tq_release_program', [6]),
];
/** Seqs of {@link SAMPLE} still needed: all but buffer 4, kernel 7 and the superseded argument. */
export const SAMPLE_LIVE = [0, 1, 3, 5, 6, 8, 9, 11, 13, 14, 15, 16];
/** Objects of {@link SAMPLE} still live. */
export const SAMPLE_LIVE_OBJECTS = [1, 2, 3, 5, 6, 8];

/** Registers the journal store contract suite for one store. */
export function journalContract(name: string, openDb: () => Promise<JournalDb>, options: JournalContractOptions = {}): void {
  const test = suite(`journal store contract: ${name}`);
  const open: Journal[] = [];
  const journalOn = async (db: JournalDb, spec = toyaccSpec, durability: 'none' | 'batch' | 'sync' = 'batch'): Promise<Journal> => {
    const j = await Journal.open({ db, spec, durability });
    open.push(j);
    return j;
  };

  test.after.each(async () => {
    for (const j of open.splice(0)) await j.close().catch(() => undefined);
  });
  test.after(async () => {
    await options.after?.();
  });

  test('meta is written on creation and names format, spec and hash', async () => {
    const db = await openDb();
    const before = Date.now();
    const j = await journalOn(db);
    assert.is(j.meta.format, FORMAT_VERSION);
    assert.is(j.meta.spec, 'toyacc');
    assert.is(j.meta.hash, toyaccSpec.hash);
    assert.is(j.meta.codec, 'cbor');
    assert.ok(j.meta.created >= before - 1000 && j.meta.created <= Date.now() + 1000, `created ${j.meta.created}`);
    const stored = await db.get(keys.meta);
    assert.ok(stored !== undefined, 'meta is in the store');
    assert.equal(decodeValue(keys.meta, stored!), j.meta);
  });

  test('a journal of another spec (hash or name) is refused with ERR_AVA_JOURNAL_SPEC; the right spec still opens', async () => {
    const db = await openDb();
    const first = await journalOn(db);
    const created = first.meta.created;
    await first.close();
    const e = await rejectsWith(Journal.open({ db, spec: otherVersion }), 'ERR_AVA_JOURNAL_SPEC');
    assert.is(e.details.recorded, 'toyacc');
    await rejectsWith(Journal.open({ db, spec: otherName }), 'ERR_AVA_JOURNAL_SPEC');
    const again = await journalOn(db);
    assert.is(again.meta.created, created, 'meta is not rewritten on reopen');
    assert.is(again.meta.hash, toyaccSpec.hash);
  });

  test('a journal of an unknown format is refused with ERR_AVA_JOURNAL_FORMAT', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    await db.put(keys.meta, encodeValue({ ...j.meta, format: FORMAT_VERSION + 1 } satisfies JournalMeta));
    await j.close();
    await rejectsWith(Journal.open({ db, spec: toyaccSpec }), 'ERR_AVA_JOURNAL_FORMAT');
  });

  test('sessions are numbered from 1 in order of creation, listed, and joined by id', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    assert.equal(await j.sessions(), []);
    const a = await j.session('alpha');
    const b = await j.session('beta');
    assert.is(a.n, 1);
    assert.is(b.n, 2);
    assert.ok((await j.session('alpha')) === a, 'the same id gives the same session journal');
    const listed = await j.sessions();
    assert.equal(listed.map((s) => [s.id, s.n]), [['alpha', 1], ['beta', 2]]);
    for (const s of listed) assert.ok(s.started > 0, `session ${s.id} has a start time`);
  });

  test('sessions opened concurrently get distinct numbers and one journal per id', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const [a, b, c, a2] = await Promise.all([j.session('a'), j.session('b'), j.session('c'), j.session('a')]);
    const numbers = [a!.n, b!.n, c!.n];
    assert.is(new Set(numbers).size, 3, `session numbers ${numbers.join(', ')} must be distinct (else sessions share keys)`);
    assert.equal((await j.sessions()).map((s) => s.n).sort(), [1, 2, 3]);
    assert.ok(a2 === a, 'two concurrent session("a") give the same session journal (else both append to one key range)');
  });

  test('append + flush + records round-trip every field, in seq order (also past 255, 65535 and 2^32)', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const seqs = [0, 1, 255, 256, 65_536, 2 ** 32 + 5];
    const written = seqs.map((seq, i) => rec(seq, 'tq_set_kernel_arg', [7, i, 4, new Uint8Array([i, 255 - i, 0, seq & 0xff])]));
    written.push(rec(2 ** 32 + 6, 'tq_get_devices', [2, [10, 11], true], 0, { devices: [10, 11] }));
    written.push(rec(2 ** 32 + 7, 'tq_create_buffer', [7, 0, 2 ** 40, null, true], 12));
    for (const r of written) s.append(r);
    await s.flush();
    const read = await all(s.records());
    assert.equal(read.map((r) => r.seq), written.map((r) => r.seq));
    assert.equal(plain(read), plain(written));
    assert.equal([...s.seqs].sort((x, y) => x - y), written.map((r) => r.seq));
  });

  test('records of two sessions stay apart', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const a = await j.session('a');
    const b = await j.session('b');
    a.append(rec(0, 'tq_retain_context', [3]));
    b.append(rec(0, 'tq_release_context', [3]));
    b.append(rec(1, 'tq_release_context', [3]));
    await Promise.all([a.flush(), b.flush()]);
    assert.equal((await all(a.records())).map((r) => [r.seq, r.fn]), [[0, FN.get('tq_retain_context')]]);
    assert.equal((await all(b.records())).map((r) => r.seq), [0, 1]);
  });

  test('an append out of order (lower or equal seq) is refused with ERR_AVA_JOURNAL_ORDER and changes nothing', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    s.append(rec(10, 'tq_retain_context', [3]));
    await rejectsWith(() => s.append(rec(5, 'tq_retain_context', [3])), 'ERR_AVA_JOURNAL_ORDER');
    await rejectsWith(() => s.append(rec(10, 'tq_release_context', [3])), 'ERR_AVA_JOURNAL_ORDER');
    s.append(rec(11, 'tq_release_context', [3]));
    await s.flush();
    assert.equal((await all(s.records())).map((r) => r.seq), [10, 11]);
  });

  test('retract removes a record, before and after it was flushed', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const r = [rec(0, 'tq_get_devices', [2, [1, 2], true], 0, { devices: [1, 2] }), rec(1, 'tq_create_context', [1, [1], true], 3),
      rec(2, 'tq_retain_context', [3]), rec(3, 'tq_create_buffer', [3, 0, 4, null, true], 4)];
    for (const x of r.slice(0, 3)) s.append(x);
    await s.flush();
    s.retract(2, r[2]);
    s.append(r[3]!);
    s.retract(3, r[3]); // still queued with its put
    await s.flush();
    assert.equal((await all(s.records())).map((x) => x.seq), [0, 1]);
    assert.equal([...s.seqs].sort(), [0, 1]);
    assert.is(s.graph.nodes.get(3)?.refs, 1, 'the retracted retain no longer counts');
    assert.not.ok(s.graph.nodes.has(4), 'the retracted create made no object');
  });

  test('retracting a create removes its stored object too', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const create = rec(1, 'tq_create_buffer', [3, 0, 4, null, true], 4);
    s.append(rec(0, 'tq_create_context', [1, [1], true], 3));
    s.append(create);
    await s.flush();
    assert.equal((await all(s.objects())).map((o) => o.id).sort(), [3, 4]);
    s.retract(1, create);
    await s.flush();
    assert.equal((await all(s.objects())).map((o) => o.id).sort(), [3], 'object 4 never existed');
  });

  test('retracting a retain puts the stored refcount back', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const retain = rec(1, 'tq_retain_context', [3]);
    s.append(rec(0, 'tq_create_context', [1, [1], true], 3));
    s.append(retain);
    await s.flush();
    s.retract(1, retain);
    await s.flush();
    assert.is(s.graph.nodes.get(3)?.refs, 1);
    const stored = (await all(s.objects())).find((o) => o.id === 3);
    assert.is(stored?.refs, 1, 'the stored object agrees with the graph');
  });

  test('retracting a configure call that superseded another keeps the earlier one (the failed call changed nothing)', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    for (const r of SAMPLE.slice(0, 10)) s.append(r); // kernel 8, argument 0 = buffer 5
    await s.flush();
    const failed = rec(10, 'tq_set_kernel_arg', [8, 0, 4, new Uint8Array(4)]); // reported failed later
    s.append(failed);
    s.retract(10, failed);
    s.append(rec(11, 'tq_release_buffer', [5]));
    assert.ok(s.graph.liveObjects().has(5), 'kernel 8 still holds buffer 5 as its argument 0');
    assert.ok(s.graph.liveRecords().includes(9), 'the record that set argument 0 is still needed');
    await s.compact();
    assert.ok((await all(s.records())).some((r) => r.seq === 9), 'compaction keeps the record that set argument 0');
  });

  test('stored objects carry kind, creating seq, refs and dependencies', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    for (const r of SAMPLE) s.append(r);
    await s.flush();
    const objects = new Map((await all(s.objects())).map((o) => [o.id, o]));
    assert.equal(objects.get(3), { id: 3, kind: 'context', created: 1, refs: 1, deps: [1, 2] });
    assert.equal(objects.get(8), { id: 8, kind: 'kernel', created: 8, refs: 1, deps: [6, 5] });
    assert.is(objects.get(6)?.refs, 0);
    assert.is(objects.get(1)?.refs, null, 'devices are interned: not counted');
  });

  test('checkpoints are written in chunks and read back byte-identical', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const big = new Uint8Array(3 << 20).map((_, i) => (i * 31 + (i >> 20)) & 0xff);
    const odd = new Uint8Array((1 << 20) + 7).map((_, i) => (i * 7) & 0xff);
    const small = new Uint8Array([9, 8, 7]);
    const empty = new Uint8Array(0);
    const n1 = await s.writeCheckpoint(new Map([[4, big], [5, odd], [6, small], [7, empty]]), 1 << 20);
    assert.is(n1, 1);
    let chunks = 0;
    for await (const key of db.keys(keys.checkpoint(s.n, n1))) chunks++;
    assert.is(chunks, 3 + 2 + 1 + 1, 'chunks of 1 MiB');
    const back = await s.readCheckpoint(n1);
    assert.equal([...back.keys()].sort(), [4, 5, 6, 7]);
    assert.ok(Buffer.from(back.get(4)!).equals(big), '3 MiB state equal');
    assert.ok(Buffer.from(back.get(5)!).equals(odd), '1 MiB + 7 state equal');
    assert.equal(Array.from(back.get(6)!), [9, 8, 7]);
    assert.is(back.get(7)!.byteLength, 0);
    const n2 = await s.writeCheckpoint(new Map([[4, small]]));
    assert.is(n2, 2);
    assert.equal(await s.checkpoints(), [1, 2]);
    assert.equal(Array.from((await s.readCheckpoint(2)).get(4)!), [9, 8, 7]);
    assert.ok(Buffer.from((await s.readCheckpoint(1)).get(4)!).equals(big), 'checkpoint 1 unchanged by checkpoint 2');
  });

  test('an object with a missing chunk (a crash while writing it) is left out of the checkpoint', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    const n = await s.writeCheckpoint(new Map([[4, new Uint8Array(300)], [5, new Uint8Array(10)]]), 100);
    await db.del(keys.chunk(s.n, n, 4, 1));
    const back = await s.readCheckpoint(n);
    assert.equal([...back.keys()], [5]);
  });

  test('a reopened journal keeps meta, sessions, records, graph and checkpoints', async () => {
    const db = await openDb();
    const j = await journalOn(db, toyaccSpec, 'sync');
    const meta = j.meta;
    const s = await j.session('kept');
    await j.session('other');
    for (const r of SAMPLE) s.append(r);
    const state = new Uint8Array(5000).map((_, i) => i & 0xff);
    await s.writeCheckpoint(new Map([[5, state]]), 1024);
    const live = [...s.graph.liveObjects()].sort((a, b) => a - b);
    await j.close();

    const again = await journalOn(db);
    assert.equal(again.meta, meta);
    assert.equal((await again.sessions()).map((x) => [x.id, x.n]), [['kept', 1], ['other', 2]]);
    const s2 = await again.session('kept');
    assert.equal(plain(await all(s2.records())), plain(SAMPLE));
    assert.equal([...s2.graph.liveObjects()].sort((a, b) => a - b), live);
    assert.equal(s2.graph.liveRecords(), SAMPLE_LIVE);
    assert.ok(Buffer.from((await s2.readCheckpoint(1)).get(5)!).equals(state));
    await rejectsWith(() => s2.append(rec(SAMPLE.length - 1, 'tq_retain_context', [3])), 'ERR_AVA_JOURNAL_ORDER');
    s2.append(rec(100, 'tq_retain_context', [3]));
    const third = await again.session('third');
    assert.is(third.n, 3, 'numbering goes on after reopen');
  });

  test('compaction deletes dead records and objects and keeps the live ones, also after reopen', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const s = await j.session('s');
    for (const r of SAMPLE) s.append(r);
    assert.equal(s.graph.liveRecords(), SAMPLE_LIVE);
    assert.equal([...s.graph.liveObjects()].sort((a, b) => a - b), SAMPLE_LIVE_OBJECTS);
    const result = await s.compact();
    assert.is(result.recordsBefore, SAMPLE.length);
    assert.is(result.recordsDeleted, SAMPLE.length - SAMPLE_LIVE.length);
    assert.is(result.objectsDeleted, 2);
    assert.equal((await all(s.records())).map((r) => r.seq), SAMPLE_LIVE);
    assert.equal((await all(s.objects())).map((o) => o.id).sort((a, b) => a - b), SAMPLE_LIVE_OBJECTS);
    assert.equal([...s.seqs].sort((a, b) => a - b), SAMPLE_LIVE);
    // A compacted journal compacts to itself, and the kernel's live dependencies survive its own release later.
    const twice = await s.compact();
    assert.is(twice.recordsDeleted, 0);
    s.append(rec(17, 'tq_release_kernel', [8]));
    // Released, the kernel frees its program and buffer 5; the context (never released) and the devices stay.
    const last = await s.compact();
    assert.equal((await all(s.records())).map((r) => r.seq), [0, 1]);
    assert.is(last.recordsDeleted, SAMPLE_LIVE.length + 1 - 2);
    await j.close();
    const again = await journalOn(db);
    const s2 = await again.session('s');
    assert.equal((await all(s2.records())).map((r) => r.seq), [0, 1]);
    assert.equal([...s2.graph.liveObjects()].sort(), [1, 2, 3]);
    assert.equal((await all(s2.objects())).map((o) => o.id).sort(), [1, 2, 3]);
  });

  test('compaction leaves the other sessions alone', async () => {
    const db = await openDb();
    const j = await journalOn(db);
    const a = await j.session('a');
    const b = await j.session('b');
    for (const r of SAMPLE) { a.append(r); b.append(r); }
    await b.flush();
    await a.compact();
    assert.equal((await all(b.records())).map((r) => r.seq), SAMPLE.map((r) => r.seq));
  });

  test('an event released by the call right after the launch that made it is elided with that launch; anything in between keeps both', async () => {
    const j = await journalOn(await openDb(), openclSpec);
    const s = await j.session('events');
    const OCL = new Map(openclSpec.functions.map((f, i) => [f.name, i]));
    const ocl = (seq: number, fn: string, args: readonly WireValue[]): JournalRecord => ({ seq, fn: OCL.get(fn)!, args, ret: 0, outs: null, t: 1_700_000_000_000 + seq });
    // clEnqueueNDRangeKernel(queue 10, kernel 11, 1, NULL, [64], NULL, waits, wait list, event)
    const launch = (seq: number, event: number, waits: number[] = []): JournalRecord =>
      ocl(seq, 'clEnqueueNDRangeKernel', [10, 11, 1, null, [64], null, waits.length, waits.length ? waits : null, event]);
    const releaseEvent = (seq: number, event: number): JournalRecord => ocl(seq, 'clReleaseEvent', [event]);

    assert.is(s.append(launch(1, 20), true), undefined);
    assert.equal(s.append(releaseEvent(2, 20), true), [1, 2], 'both queued: elided');
    assert.is(s.append(launch(3, 21), true), undefined);
    await s.flush();
    assert.equal(s.append(releaseEvent(4, 21), true), [3, 4], 'the launch already written: elided, its record deleted');
    // Kept: a second launch waits on the first event before it is released; a retain; another event's release.
    s.append(launch(5, 22));
    s.append(launch(6, 23, [22]));
    assert.is(s.append(releaseEvent(7, 22), true), undefined);
    assert.is(s.append(releaseEvent(8, 23), true), undefined, 'the release does not come right after the launch');
    s.append(launch(9, 24));
    s.append(ocl(10, 'clRetainEvent', [24]));
    assert.is(s.append(releaseEvent(11, 24), true), undefined, 'retained in between');
    s.append(launch(12, 25));
    assert.is(s.append(releaseEvent(13, 26), true), undefined, 'the release names another event');
    s.append(launch(14, 27));
    assert.is(s.append(releaseEvent(16, 27), true), undefined, 'a call in between (not journaled: a wait) might be a cut');
    s.append(launch(17, 28));
    assert.is(s.append(releaseEvent(18, 28), false), undefined, 'not while a task may cut the session');
    await s.flush();
    const kept = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18];
    assert.equal((await all(s.records())).map((r) => r.seq), kept);
    assert.equal([...s.seqs].sort((a, b) => a - b), kept);
    assert.not.ok(s.graph.nodes.has(20) || s.graph.nodes.has(21), 'the elided events are forgotten');
    assert.equal((await all(s.objects())).map((o) => o.id).filter((id) => id === 20 || id === 21), [], 'and not stored');
    assert.is(s.graph.nodes.get(25)?.refs, 1, 'event 25 is still held');
  });

  test('keys name their parts readably (errors and ava-journal print them)', () => {
    assert.is(formatKey(keys.record(1, 258)), 's!1!r!\\x00\\x00\\x00\\x00\\x00\\x00\\x01\\x02');
  });

  test.run();
}
