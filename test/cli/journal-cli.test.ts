/**
 * `ava-journal`, run as a child process (`node --import tsx src/cli/run-journal.ts ...`) against a journal written
 * by real toyacc sessions: session 1 on the local channel, session 2 on a unix-socket worker (asynchronous calls,
 * worker-side stage timings) with objects kept alive and a checkpoint, session 3 without stage timings.
 *
 * node --import tsx test/cli/journal-cli.test.ts
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { Progress } from '../../src/cli/journal-lib/progress.js';
import { formatRecord, palette } from '../../src/cli/journal-lib/render.js';
import { AvaError } from '../../src/errors.js';
import type { ApiObject, CallResult } from '../../src/guest/call-shape.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import { STAGES, encodeValue, formatKey, keys } from '../../journal/format.js';
import { Journal } from '../../journal/journal.js';
import { stageName } from '../../src/cli/journal-lib/trace.js';


const root = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'ava-journal-cli-'));
const path = join(tmp, 'journal');
test.after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

/** Runs the CLI; never throws for a non-zero exit. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', ...args], {
      cwd: root, env: { ...process.env, AVA_JOURNAL: path, AVA_JOURNAL_TIMINGS: undefined, ...env }, maxBuffer: 64 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const ok = (r: Run, what: string): void => assert.is(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);

// --- the journal under test -------------------------------------------------------------------------------------

interface SessionFacts { id: string; calls: number; records: number; functions: Record<string, number>; live: number; dead: number; deadRecords: number; liveRecords: number }
const facts: SessionFacts[] = [];

async function recordSession(transport: 'local' | 'unix', timings: boolean, keepAlive: boolean): Promise<void> {
  if (timings) process.env.AVA_JOURNAL_TIMINGS = '1';
  else delete process.env.AVA_JOURNAL_TIMINGS;
  const lib = await openGuestlib(toyaccSpec, { transport, journal: { path } });
  let calls = 0;
  lib.session.interceptor.calls$.subscribe(() => { calls++; });
  let y: Handle | undefined;
  let buffers = 0;
  const api = lib.api;
  const after = (fn: string, then: (r: CallResult) => Promise<void>) => async (...args: unknown[]): Promise<CallResult> => {
    const r = await api[fn]!(...args);
    await then(r);
    return r;
  };
  const patched: ApiObject = keepAlive ? {
    ...api,
    tq_create_context: after('tq_create_context', async (r) => { await api.tq_retain_context!(r.ret); }),
    tq_create_buffer: after('tq_create_buffer', async (r) => { if (++buffers === 2) { y = r.ret as Handle; await api.tq_retain_buffer!(y); } }),
  } : api;
  await runToyaccDemo(patched, { elements: 16, rounds: 2 });
  if (keepAlive) await lib.journal!.writeCheckpoint(new Map([[y!.id, await lib.session.extractState(y!.id)]]));
  const id = lib.session.id;
  await lib.close();
  facts.push({ id, calls, records: 0, functions: {}, live: 0, dead: 0, deadRecords: 0, liveRecords: 0 });
}

await recordSession('local', true, false);
await recordSession('unix', true, true);
await recordSession('local', false, false);
delete process.env.AVA_JOURNAL_TIMINGS;
{
  // What the library says about the journal: the CLI must print the same.
  const journal = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
  for (const info of await journal.sessions()) {
    const sj = await journal.session(info.id);
    const f = facts[info.n - 1]!;
    assert.is(f.id, info.id);
    f.records = sj.seqs.size;
    for await (const r of sj.records()) {
      const name = sj.graph.functionOf(r).name;
      f.functions[name] = (f.functions[name] ?? 0) + 1;
    }
    const live = sj.graph.liveObjects();
    f.live = live.size;
    f.dead = sj.graph.nodes.size - live.size;
    f.deadRecords = sj.graph.deadRecords(sj.seqs).length;
    f.liveRecords = sj.graph.liveRecords(live).length;
  }
  await journal.close();
}
const totalRecords = facts.reduce((n, f) => n + f.records, 0);

// --- commands ---------------------------------------------------------------------------------------------------

test('--help lists every command; no command prints the help too', async () => {
  for (const args of [['--help'], []]) {
    const r = await cli(args);
    ok(r, args.join(' '));
    for (const c of ['ls', 'show', 'stats', 'graph', 'export', 'verify', 'compact', 'pack', '--trace', '--json']) assert.ok(r.stdout.includes(c), c);
  }
});

test('ls lists the sessions with their record, timing and checkpoint counts (text and --json)', async () => {
  const text = await cli(['ls']);
  ok(text, 'ls');
  for (const f of facts) assert.ok(text.stdout.includes(f.id), f.id);
  assert.ok(text.stdout.includes('toyacc'));
  const r = await cli(['ls', '--json']);
  ok(r, 'ls --json');
  const out = JSON.parse(r.stdout) as { spec: string; format: number; sessions: { n: number; id: string; records: number; objects: number; checkpoints: number; timings: number; bytes: number }[] };
  assert.is(out.spec, 'toyacc');
  assert.is(out.format, 1);
  assert.equal(out.sessions.map((s) => s.id), facts.map((f) => f.id));
  assert.equal(out.sessions.map((s) => s.records), facts.map((f) => f.records));
  assert.equal(out.sessions.map((s) => s.timings), [facts[0]!.calls, facts[1]!.calls, 0], 'timings of every call, only where asked');
  assert.equal(out.sessions.map((s) => s.checkpoints), [0, 1, 0]);
  for (const s of out.sessions) assert.ok(s.bytes > 0);
});

test('--session picks by number, id, and id prefix; an unknown one is a coded error', async () => {
  const byNumber = JSON.parse((await cli(['ls', '--json', '--session', '2'])).stdout) as { sessions: { id: string }[] };
  assert.equal(byNumber.sessions.map((s) => s.id), [facts[1]!.id]);
  const byId = JSON.parse((await cli(['ls', '--json', '-s', facts[2]!.id])).stdout) as { sessions: { id: string }[] };
  assert.equal(byId.sessions.map((s) => s.id), [facts[2]!.id]);
  const prefix = facts[0]!.id.slice(0, 8);
  if (!facts.slice(1).some((f) => f.id.startsWith(prefix))) {
    const byPrefix = JSON.parse((await cli(['ls', '--json', '-s', prefix])).stdout) as { sessions: { id: string }[] };
    assert.equal(byPrefix.sessions.map((s) => s.id), [facts[0]!.id]);
  }
  const none = await cli(['ls', '-s', 'no-such-session']);
  assert.is(none.code, 1);
  assert.match(none.stderr, /ERR_AVA_JOURNAL_SESSION/);
});

test('show prints one readable line per record: #ids, <N bytes>, (dead), no colours off a terminal', async () => {
  const r = await cli(['show', '--session', '2']);
  ok(r, 'show');
  const lines = r.stdout.trimEnd().split('\n');
  const recordLines = lines.filter((l) => /^\s+\d+ {2}tq_/.test(l));
  assert.is(recordLines.length, facts[1]!.records);
  assert.ok(lines.some((l) => /tq_create_context\(2, \[#1, #2\], true\) -> #3$/.test(l)), 'the live context, handles as #id');
  assert.ok(lines.some((l) => /tq_create_buffer\(#3, 1, 64, <64 bytes>, true\) -> #\d+$/.test(l)), 'bytes as <N bytes>');
  assert.ok(lines.some((l) => /tq_get_devices\(.*\) -> 0 {2}outs devices=\[#1, #2\]/.test(l)), 'outs');
  assert.is(recordLines.filter((l) => l.endsWith('(dead)')).length, facts[1]!.deadRecords);
  assert.ok(!r.stdout.includes('\x1b['), 'no ANSI colours on a pipe');
  assert.ok(lines.at(-1)!.includes(`(${facts[1]!.records} of ${facts[1]!.records} records)`));
});

test('show --fn and --object filter the records', async () => {
  const byFn = await cli(['show', '--fn', 'tq_set_kernel_arg']);
  ok(byFn, 'show --fn');
  const fnLines = byFn.stdout.split('\n').filter((l) => /^\s+\d+ {2}/.test(l));
  assert.is(fnLines.length, facts.reduce((n, f) => n + (f.functions.tq_set_kernel_arg ?? 0), 0));
  assert.ok(fnLines.length > 0 && fnLines.every((l) => l.includes('tq_set_kernel_arg(')));
  const byObject = await cli(['show', '-s', '2', '--object', '#11']);
  ok(byObject, 'show --object');
  const objectLines = byObject.stdout.split('\n').filter((l) => /^\s+\d+ {2}/.test(l));
  assert.ok(objectLines.length >= 3, objectLines.join('\n'));
  assert.ok(objectLines.every((l) => /#11\b/.test(l)), objectLines.join('\n'));
  assert.ok(objectLines.some((l) => l.includes('tq_create_buffer(')), 'the creating record');
  const unknownFn = await cli(['show', '--fn', 'clFinish']);
  assert.is(unknownFn.code, 2);
  assert.match(unknownFn.stderr, /ERR_AVA_CONFIG/);
});

test('stats counts per function, live and dead objects, bytes per record and what compact would save', async () => {
  const r = await cli(['stats', '--json']);
  ok(r, 'stats --json');
  const out = JSON.parse(r.stdout) as { sessions: { id: string; records: number; functions: Record<string, number>; objects: { live: number; dead: number }; valueBytes: { total: number; perRecord: number }; compaction: { deadRecords: number; bytes: number }; timings: number; checkpoints: number }[] };
  assert.is(out.sessions.length, 3);
  out.sessions.forEach((s, i) => {
    const f = facts[i]!;
    assert.is(s.id, f.id);
    assert.is(s.records, f.records);
    assert.equal(s.functions, f.functions);
    assert.equal(s.objects, { total: f.live + f.dead, live: f.live, dead: f.dead });
    assert.is(s.compaction.deadRecords, f.deadRecords);
    assert.ok(s.compaction.bytes > 0 && s.compaction.bytes < s.valueBytes.total + 64 * s.records);
    assert.ok(Math.abs(s.valueBytes.perRecord - s.valueBytes.total / s.records) < 0.1);
  });
  assert.ok(out.sessions[1]!.objects.live > out.sessions[0]!.objects.live, 'session 2 keeps objects alive');
  const text = await cli(['stats', '-s', '1']);
  ok(text, 'stats');
  assert.match(text.stdout, new RegExp(`tq_set_kernel_arg\\s+${facts[0]!.functions.tq_set_kernel_arg}\\n`));
  assert.match(text.stdout, new RegExp(`compact would delete ${facts[0]!.deadRecords} records`));
});

test('graph prints the live objects as DOT', async () => {
  const r = await cli(['graph', '-s', '2']);
  ok(r, 'graph');
  const lines = r.stdout.trimEnd().split('\n');
  assert.is(lines[0], 'digraph journal {');
  assert.is(lines.at(-1), '}');
  const nodes = lines.filter((l) => /^\s+"s2_\d+" \[label="[a-z]+#\d+"\];$/.test(l));
  assert.is(nodes.length, facts[1]!.live);
  assert.ok(nodes.some((l) => l.includes('label="context#3"')));
  const edges = lines.filter((l) => l.includes('->'));
  assert.ok(edges.length > 0);
  for (const e of edges) assert.match(e, /^\s+"s2_\d+" -> "s2_\d+" \[label="[^"]+"(, style=dashed)?\];$/);
  let depth = 0;
  for (const l of lines) { depth += (l.match(/{/g) ?? []).length - (l.match(/}/g) ?? []).length; assert.ok(depth >= 0); }
  assert.is(depth, 0, 'balanced braces');
});

test('export writes one JSON line per record, bytes as base64; --out writes a file', async () => {
  const r = await cli(['export']);
  ok(r, 'export');
  const rows = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { session: number; seq: number; fn: string; args: unknown[]; ret: unknown; outs: unknown; t: number });
  assert.is(rows.length, totalRecords);
  for (const row of rows) {
    assert.equal(Object.keys(row).sort(), ['args', 'fn', 'outs', 'ret', 'seq', 'session', 't']);
    assert.ok(toyaccSpec.fn.has(row.fn) && typeof row.t === 'number' && Array.isArray(row.args));
  }
  const y = rows.find((row) => row.session === 2 && row.fn === 'tq_create_buffer' && row.args[1] === 1)!;
  const bytes = Buffer.from((y.args[3] as { $bytes: string }).$bytes, 'base64');
  assert.is(bytes.byteLength, 64);
  assert.is(new Float32Array(bytes.buffer, bytes.byteOffset, 16)[4], 1, 'y starts as i * 0.25');
  const file = join(tmp, 'export.jsonl');
  const toFile = await cli(['export', '--session', '1', '--fn', 'tq_create_kernel', '--out', file]);
  ok(toFile, 'export --out');
  assert.is(toFile.stdout, '');
  const kernels = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { fn: string; args: unknown[] });
  assert.equal(kernels.map((k) => k.args[1]), ['fill', 'axpy', 'scale', 'checksum']);
});

test('export --trace gives a Chrome trace: a complete event per call with its stages, worker stages where reported', async () => {
  const r = await cli(['export', '--trace']);
  ok(r, 'export --trace');
  const trace = JSON.parse(r.stdout) as { traceEvents: { name: string; ph: string; pid: number; tid: number; ts?: number; dur?: number; args?: Record<string, unknown> }[] };
  const calls = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
  assert.is(calls.length, facts[0]!.calls + facts[1]!.calls, 'every call of the two timed sessions');
  assert.equal([...new Set(calls.map((e) => e.pid))].sort(), [1, 2], 'pid = session number');
  for (const e of calls) {
    assert.ok(toyaccSpec.fn.has(e.name), e.name);
    assert.ok(typeof e.ts === 'number' && e.ts >= 0 && typeof e.dur === 'number' && e.dur >= 0);
    for (const s of STAGES) assert.ok(stageName(s) in e.args!, `${e.name} names ${stageName(s)}`);
    assert.is(e.args!.before_marshal, 0);
  }
  const remote = calls.filter((e) => e.pid === 2 && e.args!.async === false);
  assert.ok(remote.length > 0 && remote.every((e) => typeof e.args!.after_execution === 'number'), 'the unix worker reports its stages');
  assert.ok(calls.some((e) => e.pid === 2 && e.args!.async === true), 'asynchronous calls of the unix session are timed too');
  assert.ok(trace.traceEvents.some((e) => e.ph === 'X' && e.tid === 2 && e.pid === 2), 'worker track');
  assert.ok(trace.traceEvents.some((e) => e.ph === 'M' && e.name === 'process_name'));
  const finishOnly = JSON.parse((await cli(['export', '--trace', '--fn', 'tq_finish'])).stdout) as typeof trace;
  assert.is(finishOnly.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1).length, 2);
  const untimed = await cli(['export', '--trace', '--session', '3']);
  assert.is(untimed.code, 1);
  assert.match(untimed.stderr, /ERR_AVA_JOURNAL_NO_TIMINGS/);
});

test('verify reads every entry and says ok (text and --json)', async () => {
  const r = await cli(['verify']);
  ok(r, 'verify');
  assert.match(r.stdout, new RegExp(`^ok: \\d+ entries, 3 sessions, ${totalRecords} records`, 'm'));
  const json = await cli(['verify', '--json']);
  ok(json, 'verify --json');
  const out = JSON.parse(json.stdout) as { ok: boolean; problems: unknown[]; sessions: { records: number; timings: number; chunks: number }[] };
  assert.is(out.ok, true);
  assert.equal(out.problems, []);
  assert.equal(out.sessions.map((s) => s.records), facts.map((f) => f.records));
  assert.equal(out.sessions.map((s) => s.chunks), [0, 1, 0]);
});

test('verify finds a byte flipped inside a record value: exit 1, naming the key', async () => {
  const damaged = join(tmp, 'damaged');
  cpSync(path, damaged, { recursive: true });
  const key = keys.record(2, 3);
  const db = new Level<Uint8Array, Uint8Array>(damaged, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  const value = await db.get(key);
  assert.ok(value, 'record 3 of session 2 exists');
  const bad = Uint8Array.from(value);
  bad[bad.byteLength - 2]! ^= 0x40;
  await db.put(key, bad);
  await db.close();
  const r = await cli(['verify', '--journal', damaged]);
  assert.is(r.code, 1);
  assert.ok(r.stdout.includes(formatKey(key)), r.stdout);
  assert.match(r.stdout, /checksum mismatch/);
  assert.match(r.stderr, /ERR_AVA_JOURNAL_VERIFY/);
  const json = await cli(['verify', '--json', '-j', damaged]);
  assert.is(json.code, 1);
  const out = JSON.parse(json.stdout) as { ok: boolean; problems: { key?: string; code: string }[] };
  assert.is(out.ok, false);
  assert.equal(out.problems.map((p) => [p.key, p.code]), [[formatKey(key), 'ERR_AVA_JOURNAL_CORRUPT']]);
  const show = await cli(['show', '-j', damaged, '-s', '2']);
  assert.is(show.code, 1, 'reading a damaged record is an error, never skipped');
  assert.match(show.stderr, /ERR_AVA_JOURNAL_CORRUPT/);
});

test('pack writes a self-contained, compacted journal without timings, which verifies', async () => {
  const out = join(tmp, 'packed');
  const r = await cli(['pack', '--out', out]);
  ok(r, 'pack');
  assert.match(r.stdout, /packed 3 sessions into/);
  assert.ok(existsSync(join(out, 'CURRENT')));
  const ls = JSON.parse((await cli(['ls', '--json', '-j', out])).stdout) as { spec: string; sessions: { id: string; records: number; timings: number; checkpoints: number }[] };
  assert.is(ls.spec, 'toyacc');
  assert.equal(ls.sessions.map((s) => s.id), facts.map((f) => f.id));
  assert.equal(ls.sessions.map((s) => s.records), facts.map((f) => f.liveRecords));
  assert.equal(ls.sessions.map((s) => s.timings), [0, 0, 0]);
  assert.equal(ls.sessions.map((s) => s.checkpoints), [0, 1, 0], 'the live buffer keeps its checkpoint');
  const verify = await cli(['verify', '-j', out]);
  ok(verify, 'verify of the packed journal');
  const again = await cli(['pack', '--out', out]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /ERR_AVA_JOURNAL_EXISTS/);
  const noOut = await cli(['pack']);
  assert.is(noOut.code, 2);
  assert.match(noOut.stderr, /ERR_AVA_CONFIG/);
});

test('compact deletes the dead records, keeps timings, and the journal still verifies', async () => {
  const r = await cli(['compact', '--json']);
  ok(r, 'compact');
  const out = JSON.parse(r.stdout) as { sessions: { before: { records: number; bytes: number }; after: { records: number; bytes: number }; recordsDeleted: number }[] };
  assert.equal(out.sessions.map((s) => s.before.records), facts.map((f) => f.records));
  assert.equal(out.sessions.map((s) => s.after.records), facts.map((f) => f.liveRecords));
  assert.equal(out.sessions.map((s) => s.recordsDeleted), facts.map((f) => f.deadRecords));
  for (const s of out.sessions) assert.ok(s.after.bytes < s.before.bytes);
  const ls = JSON.parse((await cli(['ls', '--json'])).stdout) as { sessions: { records: number; timings: number }[] };
  assert.equal(ls.sessions.map((s) => s.timings), [facts[0]!.calls, facts[1]!.calls, 0], 'timings are history: compaction keeps them');
  ok(await cli(['verify']), 'verify after compact');
  const text = await cli(['compact', '-s', '1']);
  ok(text, 'compact again');
  assert.match(text.stdout, new RegExp(`records ${facts[0]!.liveRecords} -> ${facts[0]!.liveRecords} \\(0 deleted\\)`));
});

// --- refusals ---------------------------------------------------------------------------------------------------

test('a missing journal, an unknown command, a bad flag and a flag of another command are coded errors', async () => {
  const missing = await cli(['ls', '--journal', join(tmp, 'nope')]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /^ava-journal: ERR_AVA_JOURNAL_MISSING: /);
  const fromEnv = await cli(['ls'], { AVA_JOURNAL: join(tmp, 'nope-either') });
  assert.match(fromEnv.stderr, /ERR_AVA_JOURNAL_MISSING: .*nope-either/, 'the folder defaults to AVA_JOURNAL');
  const unknown = await cli(['frobnicate']);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /^ava-journal: ERR_AVA_CONFIG: unknown command "frobnicate"/);
  const badFlag = await cli(['ls', '--bogus']);
  assert.is(badFlag.code, 2);
  assert.match(badFlag.stderr, /ERR_AVA_CONFIG/);
  const misplaced = await cli(['ls', '--trace']);
  assert.is(misplaced.code, 2);
  assert.match(misplaced.stderr, /ERR_AVA_CONFIG: --trace does not apply to ls/);
  const badObject = await cli(['show', '--object', 'abc']);
  assert.is(badObject.code, 2);
});

test('a journal locked by a writing process is refused with advice', async () => {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  try {
    const r = await cli(['ls']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /ERR_AVA_JOURNAL_LOCKED: .*stop the process that writes it, or copy the folder/);
  } finally {
    await db.close();
  }
});

test('a journal of a spec this version does not ship is refused (ERR_AVA_JOURNAL_SPEC)', async () => {
  const other = join(tmp, 'other-spec');
  const db = new Level<Uint8Array, Uint8Array>(other, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  await db.put(keys.meta, encodeValue({ format: 1, spec: 'nosuchapi', hash: 'f'.repeat(64), codec: 'cbor', created: 0 }));
  await db.close();
  const r = await cli(['ls', '-j', other]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /ERR_AVA_JOURNAL_SPEC: .*nosuchapi/);
});

test('through the library, a toyacc journal opened with another spec is refused (ERR_AVA_JOURNAL_SPEC)', async () => {
  let code: string | undefined;
  try {
    const j = await Journal.open({ path, spec: openclSpec, mustExist: true });
    await j.close();
  } catch (error) {
    code = AvaError.isAvaError(error) ? error.code : String(error);
  }
  assert.is(code, 'ERR_AVA_JOURNAL_SPEC');
});

// --- pieces: progress bar and colours ---------------------------------------------------------------------------

test('the progress bar draws on a terminal over 10,000 items only, and clears itself', () => {
  const written: string[] = [];
  const tty = { isTTY: true, write: (s: string) => { written.push(s); } };
  const bar = new Progress(26_000, tty);
  assert.is(bar.render(11_700), '[#########...........] 45% 11700/26000 records');
  for (let i = 0; i < 26_000; i++) bar.tick();
  bar.done();
  assert.is(written.length, 102, 'one redraw per percent, then a clear');
  assert.ok(written.slice(0, -1).every((w) => w.startsWith('\r[')));
  assert.ok(written.at(-2)!.includes('100% 26000/26000 records'));
  assert.match(written.at(-1)!, /^\r +\r$/);
  const quiet: string[] = [];
  const small = new Progress(9_000, { isTTY: true, write: (s: string) => { quiet.push(s); } });
  const pipe = new Progress(50_000, { isTTY: false, write: (s: string) => { quiet.push(s); } });
  for (let i = 0; i < 9_000; i++) { small.tick(); pipe.tick(); }
  small.done();
  pipe.done();
  assert.equal(quiet, []);
});

test('show lines carry ANSI colours only when asked', () => {
  const f = toyaccSpec.fn.get('tq_create_queue')!;
  const record = { seq: 4, fn: toyaccSpec.functions.indexOf(f), args: [3, 2, true], ret: 4, outs: null, t: 0 };
  assert.is(formatRecord(f, record, palette(false)), '     4  tq_create_queue(#3, #2, true) -> #4');
  const coloured = formatRecord(f, record, palette(true), true);
  assert.ok(coloured.includes('\x1b[33m#3\x1b[0m'), coloured);
  assert.ok(coloured.includes('\x1b[2m(dead)\x1b[0m'), coloured);
});

test.run();
