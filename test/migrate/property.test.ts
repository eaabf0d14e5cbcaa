/**
 * Migration equivalence (issue 7): for random toyacc programs (test/replay/toyacc-program.ts) and one, two or three
 * migrations armed at random calls (every call index from 0 to the number of calls reachable, both ends included),
 * every call's return code / errcode, every read's bytes, and the final contents of every buffer the application
 * still holds (read back through the API) equal those of the same program run without migration and on the
 * TypeScript model. Sessions are opened with `openGuestlib` (journal in a temporary folder); the first migration
 * is armed with `migrateAt`, later ones with `armMigration` on the same session.
 *
 * The local transport runs the bulk of the cases; a smaller property runs over unix (a worker process per hop,
 * so two or three migrations are A -> B -> C (-> D) between real processes).
 *
 * node --import tsx test/migrate/property.test.ts
 *   FC_SEED=<n> changes the seed (default 20260707); FC_NUM_RUNS=<n> the runs per local property (default 14, two of
 *   them the fixed examples of both ends); FC_UNIX_RUNS=<n> the runs of the unix property (default 8, likewise).
 */
import fc from 'fast-check';
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { ToyaccModel } from '../../fixtures/toyacc/model.js';
import { armMigration } from '../../migrate/arm.js';
import type { ArmedMigration } from '../../migrate/arm.js';
import type { MigrationReport } from '../../migrate/migrate.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { ChannelKind } from '../../src/config.js';
import type { CallResult } from '../../src/guest/call-shape.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { RemoteChannel } from '../../src/transport/remote.js';
import type { Op, ProgramModel, ProgramReal, SlotInfo } from '../replay/toyacc-program.js';
import { OpCommand, PREAMBLE, opArb, runOnModel } from '../replay/toyacc-program.js';
import { pidOfWorker, removeTemp, tempDir, test } from './helpers.js';

const SEED = Number(process.env.FC_SEED ?? 20260707);
const LOCAL_RUNS = Number(process.env.FC_NUM_RUNS ?? 14);
const UNIX_RUNS = Number(process.env.FC_UNIX_RUNS ?? 8);
const MAX_OPS = 30;

type AnyApi = Record<string, (...args: unknown[]) => Promise<CallResult>>;
interface World { readonly name: string; readonly api: AnyApi; readonly slots: unknown[] }

// ------------------------------------------------------------------------------------------------ the cases

/** Programs without the generator's own `migrate` steps: here the migrations are armed by call index. */
const programArb = fc.array(opArb.filter((op) => op.op !== 'migrate'), { maxLength: MAX_OPS, size: 'max' });

/** Positions of the migrations, in thousandths of the program (0 and 1000 are the first and the last call). */
const picksArb = (m: number): fc.Arbitrary<number[]> => fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: m, maxLength: m });

/**
 * The calls before which the migrations happen: distinct, increasing, in [0, calls]. Pick p maps to
 * floor(p * (calls + 1) / 1001), so every index is reachable (calls < 1001) and 0 / 1000 give the two ends.
 */
export function migrationCalls(picks: readonly number[], calls: number): number[] {
  const ks = picks.map((p) => Math.floor((p * (calls + 1)) / 1001)).sort((a, b) => a - b);
  for (let i = 1; i < ks.length; i++) if (ks[i]! <= ks[i - 1]!) ks[i] = ks[i - 1]! + 1;
  for (let i = ks.length - 1; i >= 0; i--) ks[i] = Math.min(ks[i]!, calls - (ks.length - 1 - i));
  return ks;
}

/** Calls the program makes before the final checks: tq_get_devices, then the preamble and `ops` that apply. */
async function programCalls(ops: readonly Op[]): Promise<number> {
  return 1 + (await runOnModel(ops)).steps.length;
}

// ------------------------------------------------------------------------------------------------ running one case

/** The final state of a world: a devices query (the call at index `calls`), then every held buffer read back. */
async function finalState(world: World, known: readonly (SlotInfo | null)[], state: (handle: { id: number }) => Promise<Uint8Array>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const devices = await world.api.tq_get_devices!(2, true);
  out.devices = { ret: devices.ret, count: devices.outs.count };
  for (const [slot, info] of known.entries()) {
    if (info === null || info.kind !== 'buffer' || info.refs <= 0) continue;
    const buffer = world.slots[slot];
    const sizeBytes = new Uint8Array(8);
    const sizeInfo = await world.api.tq_get_buffer_info!(buffer, TQ.BUFFER_SIZE, 8, sizeBytes);
    const size = Number(Buffer.from(sizeBytes).readBigUInt64LE(0));
    // A queue the application holds on the buffer's context reads it through the API; without one (the application
    // released them), the buffer's state is read through the session.
    const queue = known.findIndex((s) => s !== null && s.kind === 'queue' && s.refs > 0 && s.ctx === info.ctx);
    if (queue >= 0 && size > 0) {
      const bytes = new Uint8Array(size);
      const read = await world.api.tq_enqueue_read!(world.slots[queue], buffer, 0, size, bytes);
      out[`buffer ${slot}`] = { size: sizeInfo.ret === TQ.SUCCESS ? size : sizeInfo.ret, via: 'tq_enqueue_read', ret: read.ret, bytes: [...bytes] };
    } else {
      out[`buffer ${slot}`] = { size: sizeInfo.ret === TQ.SUCCESS ? size : sizeInfo.ret, via: 'state', bytes: [...await state(buffer as { id: number })] };
    }
  }
  return out;
}

/** What one case did, for the statistics. */
interface CaseResult {
  readonly calls: number;
  readonly ks: readonly number[];
  readonly reports: readonly MigrationReport[];
}

/**
 * Runs `ops` on the model, on a journaled session without migration and on a journaled session migrated before
 * each call of `migrationCalls(picks, calls)`; compares after every call and at the end. Throws at a divergence,
 * naming the migration calls.
 */
async function runCase(transport: ChannelKind, ops: readonly Op[], picks: readonly number[]): Promise<CaseResult> {
  const calls = await programCalls(ops);
  const ks = migrationCalls(picks, calls);
  const where = `transport ${transport}, ${calls} calls, migrations before calls ${JSON.stringify(ks)}`;
  const dir = tempDir();
  const libs: Guestlib[] = [];
  try {
    const options = { transport, journal: { path: dir }, statusErrors: 'return' as const, asyncCalls: false };
    const whole = await openGuestlib(toyaccSpec, options);
    libs.push(whole);
    const moved = await openGuestlib(toyaccSpec, { ...options, migrateAt: { kind: 'at', call: ks[0]! } });
    libs.push(moved);
    const arms: ArmedMigration[] = [moved.migration!];
    for (const k of ks.slice(1)) arms.push(armMigration(moved.session, moved.journal!, { trigger: { kind: 'at', call: k }, log: () => undefined }));
    const failures: unknown[] = [];
    moved.session.onTaskError = (error) => { failures.push(error); };

    const toy = new ToyaccModel();
    const model: ProgramModel = { toy, world: { name: 'model', api: toy as unknown as AnyApi, slots: [] } as never, known: [], migrations: 0 };
    const modelWorld = model.world as unknown as World;
    const wholeWorld: World = { name: 'whole', api: whole.api as AnyApi, slots: [] };
    const movedWorld: World = { name: 'moved', api: moved.api as AnyApi, slots: [] };
    const real = { whole: wholeWorld, moved: movedWorld, trace: [] as string[], migrations: [] } as unknown as ProgramReal;
    for (const w of [modelWorld, wholeWorld, movedWorld]) {
      const { ret, outs } = await w.api.tq_get_devices!(2, true);
      assert.is(ret, TQ.SUCCESS, `${w.name}: tq_get_devices`);
      w.slots.push(...(outs.devices as unknown[]));
    }
    model.known.push({ kind: 'device', refs: 1, ctx: -1 }, { kind: 'device', refs: 1, ctx: -1 });
    for (const op of [...PREAMBLE, ...ops] as Exclude<Op, { op: 'migrate' }>[]) {
      const command = new OpCommand(op);
      if (!command.check(model)) continue;
      try {
        await command.run(model, real);
      } catch (error) {
        throw new Error(`${where}; reports so far ${JSON.stringify(arms.map((a) => a.reports.map((r) => r.call)))}; failures ${failures.map(String).join('; ')}\n${(error as Error).message}`);
      }
    }
    assert.is(whole.session.callCount, calls, `${where}: the program's calls are counted as the model counts them`);
    assert.is(moved.session.callCount, calls, `${where}: the program's calls are counted as the model counts them`);

    const objects = (toy as unknown as { objects: Map<number, { data: Uint8Array }> }).objects;
    const expected = await finalState(modelWorld, model.known, async (h) => objects.get(h.id)!.data);
    const wholeFinal = await finalState(wholeWorld, model.known, (h) => whole.session.extractState(h.id));
    const movedFinal = await finalState(movedWorld, model.known, (h) => moved.session.extractState(h.id));
    assert.equal(wholeFinal, expected, `${where}: final state without migration vs model:\n  ${real.trace.join('\n  ')}`);
    assert.equal(movedFinal, expected, `${where}: final state with migrations vs model:\n  ${real.trace.join('\n  ')}`);

    assert.equal(failures.map(String), [], `${where}: no migration failed`);
    assert.is(moved.migration!.call, ks[0], `${where}: migrateAt armed at its call`);
    assert.is(moved.migration!.reports.length, 1, `${where}: the migrateAt migration reported once`);
    for (const [i, arm] of arms.entries()) {
      assert.is(arm.reports.length, 1, `${where}: migration #${i + 1} reported once`);
      const report = arm.reports[0]!;
      assert.is(report.call, ks[i], `${where}: migration #${i + 1} happened before its call`);
      assert.is(report.session, moved.session.id);
      assert.ok(report.replayed <= report.call, `${where}: #${i + 1} replayed ${report.replayed} records of ${report.call} calls`);
      const phases = Object.values(report.phases);
      assert.is(phases.length, 6);
      assert.ok(phases.every((t) => t >= 0), 'every phase took a time >= 0');
      assert.ok(Math.abs(report.total - phases.reduce((a, b) => a + b, 0)) < 1, 'the total is the sum of the phases');
    }
    const reports = arms.map((a) => a.reports[0]!);
    if (transport !== 'local') {
      // A -> B -> C: each hop starts where the last one ended, every hop on a worker process never used before.
      for (let i = 1; i < reports.length; i++) assert.is(reports[i]!.from, reports[i - 1]!.to, `${where}: hop #${i + 1} leaves the worker hop #${i} reached`);
      const workers = [reports[0]!.from, ...reports.map((r) => r.to)];
      assert.is(new Set(workers).size, workers.length, `${where}: distinct workers ${workers.join(' -> ')}`);
      const pids = workers.map((w) => pidOfWorker(w.slice(w.indexOf(':') + 1)));
      assert.is(new Set(pids).size, pids.length, `${where}: distinct worker processes`);
      assert.ok(!pids.includes(process.pid), 'workers run in their own processes');
      assert.is(reports.at(-1)!.to, `${transport}:${(moved.session.channel as RemoteChannel).workerId}`, 'the session is on the last target');
    }
    return { calls, ks, reports };
  } finally {
    for (const lib of libs) await lib.close();
    removeTemp(dir);
  }
}

// ------------------------------------------------------------------------------------------------ the properties

/** A fixed program, for the examples that pin the two ends. */
const FIXED: Op[] = [
  { op: 'write', queue: { k: 0, live: true }, buffer: 0, offset: 4, size: 16, seed: 9 },
  { op: 'launch', queue: { k: 0, live: true }, kernel: { k: 0, live: true }, n: 16 },
  { op: 'buffer', ctx: { k: 0, live: true }, size: 64, host: false, seed: 1 },
  { op: 'read', queue: { k: 0, live: true }, buffer: 0, offset: 0, size: 16 },
  { op: 'release', target: { k: 1, live: true } },
];

function property(name: string, transport: ChannelKind, migrations: fc.Arbitrary<number>, runs: number, timeLimitMs: number): void {
  test(name, async () => {
    const started = performance.now();
    const done: CaseResult[] = [];
    const caseArb = migrations.chain((m) => fc.tuple(programArb, picksArb(m)));
    const examples: [[Op[], number[]]][] = [];
    // The two ends (first call, call after the last one), always run.
    const m = fc.sample(migrations, { numRuns: 1, seed: SEED })[0]!;
    examples.push([[FIXED, Array<number>(m).fill(0)]], [[FIXED, Array<number>(m).fill(1000)]]);
    await fc.assert(
      fc.asyncProperty(caseArb, async ([ops, picks]) => {
        done.push(await runCase(transport, ops, picks));
      }),
      { numRuns: runs, seed: SEED, examples, includeErrorInReport: true, interruptAfterTimeLimit: timeLimitMs, endOnFailure: true },
    );
    assert.ok(done.length >= Math.min(runs, 4), `only ${done.length} cases ran within ${timeLimitMs} ms`);
    assert.ok(done.some((c) => c.ks[0] === 0), 'a migration before the first call');
    assert.ok(done.some((c) => c.ks.at(-1) === c.calls), 'a migration before the call after the program\'s last one');
    assert.ok(done.some((c) => c.ks.some((k) => k > 0 && k < c.calls)), 'a migration in the middle of a program');
    const hops = done.reduce((n, c) => n + c.reports.length, 0);
    process.stdout.write(`  ${name.slice(0, 40)}...: ${done.length} cases, ${hops} migrations, up to ${Math.max(...done.map((c) => c.calls))} calls, ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    assert.ok(done.some((c) => c.reports.some((r) => r.bytes > 0)), 'a migration that moved buffer contents');
  });
}

property('one migration at any call: outputs and final buffers equal a run without migration and the model (local)', 'local', fc.constant(1), LOCAL_RUNS, 25_000);
property('two migrations at any calls: the same (local)', 'local', fc.constant(2), LOCAL_RUNS, 20_000);
property('three migrations at any calls: the same (local)', 'local', fc.constant(3), LOCAL_RUNS, 20_000);
property('two or three migrations between worker processes (unix, A -> B -> C): the same', 'unix', fc.integer({ min: 2, max: 3 }), UNIX_RUNS, 60_000);

test('migrationCalls: distinct, increasing, within [0, calls], both ends reachable', () => {
  assert.equal(migrationCalls([0], 9), [0]);
  assert.equal(migrationCalls([1000], 9), [9]);
  assert.equal(migrationCalls([0, 0, 0], 9), [0, 1, 2]);
  assert.equal(migrationCalls([1000, 1000, 1000], 9), [7, 8, 9]);
  const seen = new Set<number>();
  for (let p = 0; p <= 1000; p++) seen.add(migrationCalls([p], 40)[0]!);
  assert.is(seen.size, 41, 'every call index from 0 to 40 is reachable');
});

// ------------------------------------------------------------------------------------------------ fixed cases

test('two migrations armed at the same call both happen (or the second arm is refused), never silently dropped', async () => {
  const dir = tempDir();
  try {
    await using lib = await openGuestlib(toyaccSpec, { transport: 'local', journal: { path: dir }, migrateAt: { kind: 'at', call: 3 } });
    let second: ArmedMigration | undefined;
    let refused: unknown;
    try {
      second = armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call: 3 }, log: () => undefined });
    } catch (error) {
      refused = error;
    }
    const { outs } = await lib.api.tq_get_devices!(2, true);
    const devices = outs.devices as unknown[];
    const { ret: ctx } = await lib.api.tq_create_context!(2, devices);
    await lib.api.tq_create_queue!(ctx, devices[0]);
    await lib.api.tq_create_buffer!(ctx, 0, 16, null); // call 3
    await lib.api.tq_get_devices!(2, true);
    if (second) {
      assert.is(lib.migration!.reports.length + second.reports.length, 2,
        `both migrations armed at call 3 happened (migrateAt: ${lib.migration!.reports.length}, second arm: ${second.reports.length})`);
    } else {
      assert.is((refused as { code?: string }).code, 'ERR_AVA_CONFIG', 'a second arm at the same call is refused with ERR_AVA_CONFIG');
      assert.is(lib.migration!.reports.length, 1);
    }
  } finally {
    removeTemp(dir);
  }
});

uvuTest.run();
