/**
 * Unmodified native OpenCL programs through the ICD (issue 12): the C programs of fixtures/opencl-c, compiled with
 * the system compiler against libOpenCL, run natively (PoCL) and with OCL_ICD_VENDORS naming our ICD, where the
 * ICD loader shows only the remoted platform and every call goes through ava-guestd's session to a worker.
 * Each gives byte-identical stdout natively, through the ICD, with journaling (the journal then verifies), and with
 * a migration at a random call (a bounded property over the call index). `clinfo` through the ICD lists the remoted
 * platform and answers every query as natively; a program killed mid-run leaves a journal that verifies.
 *
 * node --import tsx test/cfront/icd-programs.test.ts
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { buildOpenclPrograms } from '../../fixtures/opencl-c/build.js';
import type { OpenclCProgramName } from '../../fixtures/opencl-c/build.js';
import { icdEnvironment } from '../../src/cfront/icd-env.js';
import { openJournalForTool } from '../../src/cli/journal-lib/store.js';
import { verifyJournal } from '../../src/cli/journal-lib/verify.js';
import { requireOpenCL } from '../helpers/opencl.js';
import type { RunResult } from '../migrate/helpers.js';
import { eventually, removeTemp, runCommand, tempDir, test } from '../migrate/helpers.js';

/** Every program but the benchmarks `launches` and `transfers` (bench/icd.ts runs those; `launches --events` has a test below). */
const PROGRAMS: readonly OpenclCProgramName[] = ['info', 'vector_add', 'host_memory', 'errors', 'callbacks', 'binaries', 'threads', 'no_release', 'rect', 'cpp_wrapper', 'images', 'cpp_default', 'context_devices', 'zero_copy', 'deferred_reads', 'finish_callbacks'];

if (await requireOpenCL()) {
  let dir: string;
  let programs: Record<string, string>;
  let icd: Record<string, string>;
  const native = new Map<string, string>();
  uvuTest.before(async () => {
    dir = tempDir();
    programs = await buildOpenclPrograms();
    icd = await icdEnvironment();
  });
  uvuTest.after(() => { removeTemp(dir); });

  /** The environment of this process without AVA_* and OCL_ICD_* variables, plus `extra`. */
  const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AVA_') && !k.startsWith('OCL_ICD'))),
    ...extra,
  });
  const show = (what: string, r: RunResult): string => `${what}: exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const run = (name: string, extra: Record<string, string> = {}, args: string[] = []): Promise<RunResult> =>
    runCommand(programs[name]!, args, { env: cleanEnv(extra), timeoutMs: 60_000 });
  const viaIcd = (name: string, extra: Record<string, string> = {}, args: string[] = []): Promise<RunResult> => run(name, { ...icd, ...extra }, args);

  async function verified(journal: string): Promise<{ ok: boolean; records: number; text: string }> {
    const j = await openJournalForTool(journal);
    try {
      const report = await verifyJournal(j);
      return { ok: report.ok, records: report.sessions.reduce((n, s) => n + s.records, 0), text: JSON.stringify(report.problems.slice(0, 3)) };
    } finally {
      await j.close();
    }
  }

  test('clinfo through the ICD lists one platform, named as remoted, and answers every other query as natively', async () => {
    const list = await runCommand('clinfo', ['-l'], { env: cleanEnv(icd), timeoutMs: 60_000 });
    assert.is(list.code, 0, show('clinfo -l', list));
    assert.match(list.stdout, /Platform #0: AvA remoted: /);
    assert.not.match(list.stdout, /Platform #1/);
    const [nat, rem] = await Promise.all([runCommand('clinfo', [], { env: cleanEnv(), timeoutMs: 60_000 }), runCommand('clinfo', [], { env: cleanEnv(icd), timeoutMs: 60_000 })]);
    assert.is(rem.code, 0, show('clinfo', rem));
    const a = nat.stdout.split('\n');
    const b = rem.stdout.split('\n');
    assert.is(b.length, a.length, 'clinfo prints as many lines through the ICD');
    const differing = a.flatMap((line, i) => (line === b[i] ? [] : [[line, b[i]!] as const]));
    for (const [n, r] of differing) {
      // Only the platform's name (with our prefix) and its ICD suffix may differ.
      const renamed = r.includes('AvA remoted: ') && r.replace('AvA remoted: ', '') === n;
      const suffix = /suffix|Success \[/.test(n) && r.includes('AVA');
      assert.ok(renamed || suffix, `clinfo line differs beyond the platform name:\n  native: ${n}\n  icd:    ${r}`);
    }
    assert.ok(differing.length > 0, 'the platform name shows that it is remoted');
  });

  for (const name of PROGRAMS) {
    test(`${name}: same stdout natively and through the ICD`, async () => {
      const n = await run(name);
      assert.is(n.code, 0, show(`${name} natively`, n));
      assert.match(n.stdout, new RegExp(`OK ${name}\\n$`));
      native.set(name, n.stdout);
      const r = await viaIcd(name);
      assert.is(r.code, 0, show(`${name} through the ICD`, r));
      assert.is(r.stdout, n.stdout);
      // errors forks a child that calls: the front refuses those calls, saying so once (the parent's session is unharmed).
      const forked = /^ava-front: clGetDeviceInfo: OpenCL calls from a forked child .*\n/m;
      if (name === 'errors') assert.match(r.stderr, forked, 'the forked child is told its calls fail');
      assert.not.match(r.stderr.replace(forked, ''), /ava-front:/, 'no front error on stderr');
    });
  }

  test('with journaling: same stdout, and ava-journal verify accepts each journal', async () => {
    for (const name of ['vector_add', 'callbacks', 'threads', 'no_release', 'cpp_wrapper'] as const) {
      const journal = join(dir, `journal-${name}`);
      const r = await viaIcd(name, { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal });
      assert.is(r.code, 0, show(name, r));
      assert.is(r.stdout, native.get(name));
      const v = await verified(journal);
      assert.ok(v.ok, `${name}: ${v.text}`);
      assert.ok(v.records > 0, `${name}: the journal holds records`);
    }
  });

  test('a migration at a random call (unix workers): same stdout, and the migration happened (property, 10 runs)', async () => {
    // How many calls each program makes: the last journaled sequence number is a call that exists.
    const lastSeq = new Map<string, number>();
    for (const name of PROGRAMS) {
      const journal = join(dir, `count-${name}`);
      const r = await viaIcd(name, { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal });
      assert.is(r.code, 0, show(name, r));
      const export_ = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', 'export', '--journal', journal], { timeoutMs: 60_000 });
      const seqs = export_.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
      lastSeq.set(name, Math.max(...seqs));
    }
    let run = 0;
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...PROGRAMS.filter((p) => p !== 'info')).chain((name) => fc.tuple(fc.constant(name), fc.integer({ min: 1, max: lastSeq.get(name)! }))),
      async ([name, call]) => {
        try {
          await migratedRun(name, call);
        } catch (error) {
          // fast-check shows a plain error's message with the counterexample.
          throw new Error(`${name} at call ${call}: ${(error as Error).message}`);
        }
      },
    ), { numRuns: 10, seed: Number(process.env.FC_SEED ?? Date.now() % 1e9) });

    async function migratedRun(name: string, call: number): Promise<void> {
        const report = join(dir, `report-${run++}.jsonl`);
        const r = await viaIcd(name, {
          AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_JOURNAL: join(dir, `migrate-${run}`), AVA_MIGRATION_REPORT: report,
        });
        assert.is(r.code, 0, show(`${name} migrated at call ${call}`, r));
        assert.is(r.stdout, native.get(name), `${name} migrated at call ${call}`);
        assert.ok(existsSync(report), `${name}: a migration at call ${call} happened\n${r.stderr}`);
        const moved = JSON.parse(readFileSync(report, 'utf8').trim().split('\n')[0]!) as { call: number; from: string; to: string };
        assert.ok(moved.call >= call && moved.from !== moved.to, JSON.stringify(moved));
    }
  });

  test('a migration while a mapping is live (between a map and its unmap): same stdout, the region mapped again on the target', async () => {
    // The journal names every map: migrate right after each one, before the program writes through the pointer.
    for (const name of ['images', 'host_memory'] as const) {
      const journal = join(dir, `maps-${name}`);
      const r = await viaIcd(name, { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal });
      assert.is(r.code, 0, show(name, r));
      const export_ = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', 'export', '--journal', journal], { timeoutMs: 60_000 });
      const maps = export_.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; fn: string }).filter((x) => /^clEnqueueMap/.test(x.fn));
      assert.ok(maps.length >= 2, `${name}: the journal holds its maps (${maps.length})`);
      for (const { seq } of maps) {
        const report = join(dir, `maps-${name}-${seq}.jsonl`);
        const m = await viaIcd(name, {
          AVA_MIGRATION_CALL_ID: String(seq + 1), AVA_CHANNEL: 'UNIX', AVA_MIGRATION_REPORT: report, AVA_JOURNAL: join(dir, `maps-${name}-${seq}`),
        });
        assert.is(m.code, 0, show(`${name} migrated at call ${seq + 1}`, m));
        assert.is(m.stdout, native.get(name), `${name} migrated at call ${seq + 1}`);
        assert.ok(existsSync(report), `${name}: a migration at call ${seq + 1} happened`);
      }
    }
  });

  test('an event per launch released right after (launches --events): the front sends each as a launch asking for no event and no release, and keeps events that are used', async () => {
    const args = ['300', '--events'];
    const expected = await run('launches', {}, args);
    assert.is(expected.code, 0, show('launches natively', expected));
    const journal = join(dir, 'events-journal');
    const r = await viaIcd('launches', { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal, AVA_JOURNAL_TIMINGS: '1' }, args);
    assert.is(r.code, 0, show('launches through the ICD', r));
    assert.is(r.stdout, expected.stdout);
    const v = await verified(journal);
    assert.ok(v.ok, v.text);
    assert.ok(v.records > 0 && v.records < 40, `the setup's records only, not 600 for the launches and releases (${v.records})`);
    // The calls the session saw (every call has its stage timings journaled with AVA_JOURNAL_TIMINGS=1).
    const trace = join(dir, 'events-trace.json');
    const exported = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', 'export', '--trace', '--journal', journal, '--out', trace], { env: cleanEnv(), timeoutMs: 60_000 });
    assert.is(exported.code, 0, show('ava-journal export --trace', exported));
    const calls = new Map<string, number>();
    for (const e of (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name?: string; ph?: string }[] }).traceEvents) {
      if (e.name?.startsWith('cl')) calls.set(e.name, (calls.get(e.name) ?? 0) + 1);
    }
    // 300 launches and one more whose event is retained and waited for; a marker's event, which the call must make.
    assert.is(calls.get('clEnqueueNDRangeKernel'), 301);
    assert.is(calls.get('clEnqueueMarker'), 1);
    assert.is(calls.get('clRetainEvent'), 1);
    assert.is(calls.get('clReleaseEvent'), 3, 'only the releases of events that were needed or used');
  });

  test('a marker per launch, its event released right after (launches --markers): the journal keeps no marker/release pair, and a migration at a launch, a marker or a release keeps the result', async () => {
    // The front cannot drop a marker's event (the call needs one), so the journal elides the pair, but never across a
    // migration's cut (a release held for the target must find its event replayed there).
    const args = ['300', '--markers'];
    const expected = await run('launches', {}, args);
    assert.is(expected.code, 0, show('launches natively', expected));
    const journal = join(dir, 'markers-journal');
    const r = await viaIcd('launches', { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal }, args);
    assert.is(r.code, 0, show('launches through the ICD', r));
    assert.is(r.stdout, expected.stdout);
    const v = await verified(journal);
    assert.ok(v.ok, v.text);
    assert.ok(v.records > 0 && v.records < 40, `the setup's records only, not 600 for the markers and releases (${v.records})`);
    // The calls go launch, marker, release from about call 15 on: migrate before each of a few consecutive calls.
    for (let call = 40; call < 46; call++) {
      const report = join(dir, `markers-${call}.jsonl`);
      const m = await viaIcd('launches', {
        AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_MIGRATION_REPORT: report, AVA_JOURNAL: join(dir, `markers-${call}`),
      }, args);
      assert.is(m.code, 0, show(`launches --markers migrated at call ${call}`, m));
      assert.is(m.stdout, expected.stdout, `migrated at call ${call}`);
      assert.ok(existsSync(report), `a migration at call ${call} happened\n${m.stderr}`);
    }
  });

  test('an event per launch or per marker: the front frees each event object at its last release (peak RSS of the program flat from 20,000 to 200,000 launches)', async () => {
    const peak = async (launches: number, mode: string): Promise<number> => {
      const r = await viaIcd('launches', {}, [String(launches), mode]);
      assert.is(r.code, 0, show(`launches ${launches} ${mode} through the ICD`, r));
      const m = /max RSS (\d+) KB/.exec(r.stderr);
      assert.ok(m, `the program reports its peak RSS:\n${r.stderr}`);
      return Number(m[1]);
    };
    // --events: each event is dropped with its release (see the test above); --markers: each is made and released.
    for (const mode of ['--events', '--markers']) {
      const small = await peak(20_000, mode);
      const large = await peak(200_000, mode);
      // Kept for the process's life, the 180,000 more event objects (with their map entries) took ~31 MB.
      assert.ok(large - small < 8 * 1024, `${mode}: peak RSS ${small} KB after 20,000 launches, ${large} KB after 200,000`);
    }
  });

  test('the same launch again and again (launches 2000): the front sends it once with a repeat count, and each is still a call of its own (migrations at calls inside the run keep the result)', async () => {
    const args = ['2000'];
    const expected = await run('launches', {}, args);
    assert.is(expected.code, 0, show('launches natively', expected));
    // The setup takes about 15 calls: these fall among the launches, inside the front's batches of 1024 calls. Were a
    // repeat counted once, the program would make about 20 calls and neither migration would happen.
    for (const call of [700, 1900]) {
      const report = join(dir, `repeat-${call}.jsonl`);
      const m = await viaIcd('launches', {
        AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_MIGRATION_REPORT: report, AVA_JOURNAL: join(dir, `repeat-${call}`),
      }, args);
      assert.is(m.code, 0, show(`launches migrated at call ${call}`, m));
      assert.is(m.stdout, expected.stdout, `migrated at call ${call}`);
      assert.ok(existsSync(report), `a migration at call ${call} happened\n${m.stderr}`);
      const migration = JSON.parse(readFileSync(report, 'utf8').trim().split('\n')[0]!) as { call: number };
      assert.is(migration.call, call, 'the migration happened before that call');
    }
  });

  test('transfers (8 MiB blocking writes and reads, byte strings sent from the program\'s memory and read in place by the sidecar): same stdout natively, through the ICD and migrated', async () => {
    const args = ['8', '3'];
    const expected = await run('transfers', {}, args);
    assert.is(expected.code, 0, show('transfers natively', expected));
    const r = await viaIcd('transfers', {}, args);
    assert.is(r.code, 0, show('transfers through the ICD', r));
    assert.is(r.stdout, expected.stdout);
    assert.not.match(r.stderr, /ava-front:/, 'no front error on stderr');
    for (const call of [12, 14]) {
      const report = join(dir, `transfers-${call}.jsonl`);
      const m = await viaIcd('transfers', { AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_JOURNAL: join(dir, `transfers-${call}`), AVA_MIGRATION_REPORT: report }, args);
      assert.is(m.code, 0, show(`transfers migrated at call ${call}`, m));
      assert.is(m.stdout, expected.stdout, `migrated at call ${call}`);
      assert.ok(existsSync(report), `a migration at call ${call} happened\n${m.stderr}`);
    }
  });

  test('a device met first in CL_CONTEXT_DEVICES (context from a type, with an error callback): a migration before every call keeps stdout', async () => {
    const journal = join(dir, 'count-context_devices-all');
    const r = await viaIcd('context_devices', { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal });
    assert.is(r.code, 0, show('context_devices', r));
    const export_ = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', 'export', '--journal', journal], { timeoutMs: 60_000 });
    const last = Math.max(...export_.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq));
    for (let call = 1; call <= last; call++) {
      const report = join(dir, `context-devices-${call}.jsonl`);
      const m = await viaIcd('context_devices', {
        AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_MIGRATION_REPORT: report, AVA_JOURNAL: join(dir, `context-devices-${call}`),
      });
      assert.is(m.code, 0, show(`context_devices migrated at call ${call}`, m));
      assert.is(m.stdout, native.get('context_devices'), `context_devices migrated at call ${call}`);
      assert.ok(existsSync(report), `a migration at call ${call} happened\n${m.stderr}`);
    }
  });

  test('transfers over one frame (1088 MiB): split into parts, same stdout natively and through the ICD; a call that cannot be split is refused alone', async () => {
    const n = await run('big_transfers');
    assert.is(n.code, 0, show('big_transfers natively', n));
    const r = await viaIcd('big_transfers');
    assert.is(r.code, 0, show('big_transfers through the ICD', r));
    assert.is(r.stdout, n.stdout);
    assert.match(r.stdout, /blocking write and read of 1088 MiB: equal/);
    // clCreateBuffer's host bytes cannot be split: that call fails with CL_OUT_OF_RESOURCES, the next ones work.
    const c = await viaIcd('big_transfers', {}, ['--copy-host-ptr']);
    assert.is(c.code, 0, show('big_transfers --copy-host-ptr through the ICD', c));
    assert.match(c.stdout, /create with COPY_HOST_PTR of 1088 MiB: -5\nsmall round trip afterwards: ok\n/);
    assert.match(c.stderr, /clCreateBuffer: a call of \d+ bytes is over the \d+ a frame may carry: refused, the session goes on/);
  });

  test('a split non-blocking write on an out-of-order queue: its event covers every part (each waits for the one before)', async () => {
    const n = await run('big_transfers', {}, ['--out-of-order']);
    assert.is(n.code, 0, show('big_transfers --out-of-order natively', n));
    const journal = join(tempDir(), 'out-of-order');
    const r = await viaIcd('big_transfers', { AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal }, ['--out-of-order']);
    assert.is(r.code, 0, show('big_transfers --out-of-order through the ICD', r));
    assert.is(r.stdout, n.stdout);
    // The parts as journaled: offset, size, wait-list count, wait list and event of each write of the buffer.
    const shown = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-journal.ts', 'show', '--journal', journal, '--fn', 'clEnqueueWriteBuffer'], { env: cleanEnv(), timeoutMs: 120_000 });
    assert.is(shown.code, 0, show('ava-journal show', shown));
    // Journaled for their events only, the parts keep no bytes (null).
    const parts = [...shown.stdout.matchAll(/clEnqueueWriteBuffer\(#\d+, #\d+, 0, (\d+), (\d+), null, (\d+), (null|\[#(\d+)\]), #(\d+)\)/g)]
      .map((m) => ({ offset: Number(m[1]), size: Number(m[2]), count: Number(m[3]), waitsFor: m[5] === undefined ? null : Number(m[5]), event: Number(m[6]) }));
    assert.is(parts.length, 5, `1088 MiB in parts of 256 MiB\n${shown.stdout}`);
    assert.is(parts.reduce((sum, p) => sum + p.size, 0), 1088 * 2 ** 20);
    assert.is(parts[0]!.count, 0, 'the first part waits for the program\'s (empty) wait list');
    for (let k = 1; k < parts.length; k++) {
      assert.is(parts[k]!.offset, parts[k - 1]!.offset + parts[k - 1]!.size, `part ${k} follows part ${k - 1}`);
      assert.is(parts[k]!.count, 1, `part ${k} waits for one event`);
      assert.is(parts[k]!.waitsFor, parts[k - 1]!.event, `part ${k} waits for the event of part ${k - 1}`);
    }
  });

  test('a sidecar that cannot start: clear error on stderr, no platform, the program fails cleanly', async () => {
    const r = await viaIcd('vector_add', { AVA_GUESTD_NODE: '/nonexistent/node' });
    assert.is.not(r.code, 0, show('vector_add', r));
    assert.match(r.stderr, /ava-front: cannot start ava-guestd \(\/nonexistent\/node/);
    assert.match(r.stdout, /FAIL clGetPlatformIDs/);
  });

  test('an unknown AVA_* value: the sidecar refuses the session with its error code, the program fails cleanly', async () => {
    const r = await viaIcd('vector_add', { AVA_CHANNEL: 'CARRIER-PIGEON' });
    assert.is.not(r.code, 0, show('vector_add', r));
    assert.match(r.stderr, /ava-guestd refused the session: ERR_AVA_CONFIG: /);
    // ava-guestd's own setting too; AVA_GUESTD_SPIN_US=0 (no polling) is a valid one.
    const spin = await viaIcd('vector_add', { AVA_GUESTD_SPIN_US: 'fast' });
    assert.is.not(spin.code, 0, show('vector_add', spin));
    assert.match(spin.stderr, /ava-guestd refused the session: ERR_AVA_CONFIG: AVA_GUESTD_SPIN_US="fast"/);
    const still = await viaIcd('vector_add', { AVA_GUESTD_SPIN_US: '0' });
    assert.is(still.code, 0, show('vector_add without polling', still));
    assert.is(still.stdout, native.get('vector_add'));
  });

  test('ava-migrate -- <compiled program>: runs it through the ICD, migrates and prints the JSON report', async () => {
    const journal = join(dir, 'cli');
    const r = await runCommand(process.execPath, ['--import', 'tsx', 'src/cli/run-migrate.ts', '--call', '12', '--journal', journal, '--json', '--', programs.vector_add!], {
      env: cleanEnv(), timeoutMs: 90_000,
    });
    assert.is(r.code, 0, show('ava-migrate', r));
    const lines = r.stdout.trim().split('\n');
    const report = JSON.parse(lines.at(-1)!) as { call: number; migrations: number; phases: Record<string, number>; journal: string; exitCode: number };
    assert.is(`${lines.slice(0, -1).join('\n')}\n`, native.get('vector_add'));
    assert.is(report.migrations, 1);
    assert.is(report.call, 12);
    assert.is(report.exitCode, 0);
    assert.ok(['drain', 'extract', 'connect', 'replay', 'restore', 'switch'].every((p) => typeof report.phases[p] === 'number'));
    assert.ok((await verified(journal)).ok, 'ava-journal verify accepts the journal');
  });

  /** Pids of the processes whose parent is `pid` (from /proc). */
  function childrenOf(pid: number): number[] {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(d)] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
  }

  /** Bytes of the files in folder `path` (0 while it does not exist). */
  const folderBytes = (path: string): number => {
    try {
      return readdirSync(path).reduce((n, f) => n + statSync(join(path, f)).size, 0);
    } catch {
      return 0;
    }
  };

  for (const when of ['while it runs', 'as it starts'] as const) {
    test(`failover: the worker killed (SIGKILL) ${when}; the session is ${when === 'as it starts' ? 'opened on a new worker' : 'rebuilt'} and the result is right`, async () => {
      const launches = 300_000;
      const journal = join(dir, `failover-${when.replace(/ /g, '-')}`);
      const child = spawn(programs.launches!, [String(launches)], {
        env: cleanEnv({ ...icd, AVA_CHANNEL: 'UNIX', AVA_FAILOVER: '1', AVA_JOURNAL_DATA: '1', AVA_JOURNAL: journal }), stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      // program -> ava-guestd -> its unix worker
      let worker: number | undefined;
      const found = await eventually(() => {
        worker = childrenOf(child.pid!).flatMap(childrenOf)[0];
        return worker !== undefined;
      }, 20_000);
      assert.ok(found, 'the sidecar started a worker process');
      // While it runs: once launches are being journaled (their data makes the journal grow).
      if (when === 'while it runs') assert.ok(await eventually(() => folderBytes(journal) > 256 * 1024, 60_000), 'the program is launching');
      process.kill(worker!, 'SIGKILL');
      const code = await exited;
      assert.is(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      assert.match(stdout, new RegExp(`all 64 values equal ${launches}: yes`));
      // As it starts the worker may die before its session is open (a new worker opens it) or just after (a rebuild).
      if (when === 'while it runs') assert.match(stderr, /worker lost before call \d+; session \S+ rebuilt on /);
      else assert.match(stderr, /worker lost (while the session opened|before call \d+; session \S+ rebuilt on )/);
    });
  }

  test('a program killed mid-run (SIGKILL) leaves a journal that verifies', async () => {
    const journal = join(dir, 'killed');
    const child = spawn(programs.launches!, ['100000000'], { env: cleanEnv({ ...icd, AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal }), stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // ava-guestd sees the program gone, closes the session and releases the journal's lock.
    let last: { ok: boolean; records: number; text: string } | undefined;
    const done = await eventually(async () => {
      try {
        last = await verified(journal);
        return true;
      } catch {
        return false; // still locked by the sidecar
      }
    }, 30_000);
    assert.ok(done, 'the sidecar released the journal within 30 s');
    assert.ok(last!.ok, last!.text);
    assert.ok(last!.records > 0, 'the journal holds the records made before the kill');
  });

  uvuTest.run();
}
