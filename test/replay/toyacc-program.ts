/**
 * Random toyacc programs as fast-check commands, run at once on three worlds and compared after every call:
 *
 * - `model`: the TypeScript model (fixtures/toyacc/model.ts), the oracle;
 * - `whole`: a journaled guest session on one worker, for the whole program;
 * - `moved`: the same program on a journaled guest session that is migrated (journal planned, explicit state
 *   extracted, replayed onto a fresh worker with the same session id, restored, channel switched) wherever a
 *   {@link MigrateCommand} stands, any number of times.
 *
 * Commands are data (an {@link Op}) plus preconditions on what the model knows; handles are picked by index among the
 * slots of the wanted kind when the command runs, so that shrinking keeps programs meaningful. The same commands run
 * through {@link runProgram} for the fixed regression tests (a command-list runner with the semantics of
 * `fc.asyncModelRun`: a command whose precondition fails is skipped).
 */
import fc from 'fast-check';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { ToyaccModel } from '../../fixtures/toyacc/model.js';
import type { JournalRecord } from '../../journal/format.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { AvaError } from '../../src/errors.js';
import type { LocalChannel } from '../../src/transport/local.js';
import type { Worker } from '../../src/worker/worker.js';
import type { Migration, RecordedGuest } from './helpers.js';
import { migrate, openRecordedGuest } from './helpers.js';
import type { AnyApi, Call, SlotInfo, ToyOp, World as ToyWorld } from '../helpers/toyacc-ops.js';
import { DEVICES_CALL, applicable as applicableOp, describe, deviceSlots, invoke, learn, observeResult, opArbs, toCall } from '../helpers/toyacc-ops.js';

export type { Kind, Ref, SlotInfo } from '../helpers/toyacc-ops.js';
export { FLOATS, INFO, KERNELS, OPTIONS } from '../helpers/toyacc-ops.js';

/**
 * This property's program sources, by index (unlike failover's: 'fill; scale' rather than 'fill scale', and an empty
 * source, which builds to TQ_BUILD_FAILURE); kept as they were so that a seed keeps giving the same programs.
 */
export const SOURCES = ['fill axpy scale checksum', 'fill; scale', 'checksum axpy', 'fill bogus', ''];

/** One step of a program: the shared ops, a devices query, and a migration of the `moved` session. */
export type Op = ToyOp | { readonly op: 'devices' } | { readonly op: 'migrate' };

/** One world's handles by slot (null where the create failed), named for the traces. */
interface World extends ToyWorld {
  readonly name: string;
}

/** The model side of `fc.asyncModelRun`. */
export interface ProgramModel {
  readonly toy: ToyaccModel;
  readonly world: World;
  readonly known: (SlotInfo | null)[];
  migrations: number;
}

/** The real side: the two guest sessions. */
export interface ProgramReal {
  readonly whole: World & { readonly guest: RecordedGuest };
  readonly moved: World & { readonly guest: RecordedGuest };
  readonly trace: string[];
  readonly migrations: Migration[];
}

// ------------------------------------------------------------------------------------------------ calls

/** Whether `op` can run on what the model knows (the command's precondition). */
export function applicable(op: Op, known: readonly (SlotInfo | null)[]): boolean {
  return op.op === 'devices' || op.op === 'migrate' || applicableOp(op, known);
}

/** The call of `op` (not `migrate`), with slots picked by what the model knows. */
function callOf(op: Exclude<Op, { op: 'migrate' }>, known: readonly (SlotInfo | null)[]): Call {
  return op.op === 'devices' ? DEVICES_CALL : toCall(op, known, SOURCES);
}

/** What a call gives, in a form equal across worlds (no handle values). */
async function observe(world: World, call: Call): Promise<Record<string, unknown>> {
  const got = await invoke(world, call);
  if ('error' in got) return { threw: (got.error as AvaError).code ?? (got.error as Error).name, message: (got.error as Error).message };
  const { ret, outs } = got.result;
  // A devices query in the middle of a program: its handles take no slots (the known slots have none for them).
  if (call.observe.as === 'devices') return { ret, count: outs.count, n: (outs.devices as unknown[] | undefined)?.length };
  return observeResult(world, call.observe, got.args, got.result);
}

// ------------------------------------------------------------------------------------------------ commands

/** One toyacc call on the three worlds, compared. */
export class OpCommand implements fc.AsyncCommand<ProgramModel, ProgramReal> {
  constructor(readonly op: Exclude<Op, { op: 'migrate' }>) {}

  check(m: Readonly<ProgramModel>): boolean {
    return applicable(this.op, m.known);
  }

  async run(m: ProgramModel, r: ProgramReal): Promise<void> {
    const call = callOf(this.op, m.known);
    r.trace.push(describe(call));
    const expected = await observe(m.world, call);
    const whole = await observe(r.whole, call);
    const moved = await observe(r.moved, call);
    const line = (o: Record<string, unknown>): string => JSON.stringify(o);
    if (line(whole) !== line(expected) || line(moved) !== line(expected)) {
      throw new Error(`divergence at call ${r.trace.length - 1} after ${r.migrations.length} migration(s):\n  ${r.trace.join('\n  ')}\n` +
        ` model: ${line(expected)}\n whole: ${line(whole)}\n moved: ${line(moved)}`);
    }
    learn(m.known, call, expected);
  }

  toString(): string {
    return JSON.stringify(this.op);
  }
}

/** Migrates the `moved` session to a fresh worker, then checks the target against the source. */
export class MigrateCommand implements fc.AsyncCommand<ProgramModel, ProgramReal> {
  check(m: Readonly<ProgramModel>): boolean {
    return m.migrations < 3;
  }

  async run(m: ProgramModel, r: ProgramReal): Promise<void> {
    const guest = r.moved.guest;
    const before = handleTable(guest);
    r.trace.push(`-- migrate #${m.migrations + 1}`);
    const migration = await migrate(guest);
    m.migrations++;
    r.migrations.push(migration);
    // Same live handles with the same reference counts (retains and releases replayed in balance)...
    assert.equal(handleTable(guest), before, `handle table after migration #${m.migrations}:\n  ${r.trace.join('\n  ')}`);
    // ...and the same explicit state.
    for (const [id, bytes] of migration.states) {
      assert.equal([...await guest.session.extractState(id, migration.plan.held.has(id))], [...bytes], `state of ${id} after migration #${m.migrations}`);
    }
  }

  toString(): string {
    return JSON.stringify({ op: 'migrate' });
  }
}

/** [id, kind, refs] of every live handle of the guest's current worker session. */
export function handleTable(guest: RecordedGuest): string[] {
  const table = (guest.session.channel as LocalChannel).session.handles;
  return [...table.live()].map((h) => `${h.id}:${h.kind}:${table.refs(h.id)}`).sort();
}

/** A command of `op`. */
export function commandOf(op: Op): fc.AsyncCommand<ProgramModel, ProgramReal> {
  return op.op === 'migrate' ? new MigrateCommand() : new OpCommand(op);
}

// ------------------------------------------------------------------------------------------------ arbitraries

/** Every op, weighted towards programs that build state and use it. */
export const opArb: fc.Arbitrary<Op> = fc.oneof<fc.WeightedArbitrary<Op>[]>(
  ...opArbs({ context: 2, queue: 3, buffer: 5, program: 3, build: 3, kernel: 4, setArg: 7, retain: 3, release: 6, write: 4, read: 4, launch: 6, info: 2 }, SOURCES),
  { weight: 1, arbitrary: fc.constant({ op: 'devices' as const }) },
  { weight: 6, arbitrary: fc.constant({ op: 'migrate' as const }) },
);

/** The commands for `fc.commands`. */
export const commandArbs: fc.Arbitrary<fc.AsyncCommand<ProgramModel, ProgramReal>>[] = [opArb.map(commandOf, (c) => {
  if (c instanceof OpCommand) return c.op;
  if (c instanceof MigrateCommand) return { op: 'migrate' };
  throw new Error('not a command of this file');
})];

// ------------------------------------------------------------------------------------------------ setup and final checks

/**
 * A program in progress. The model and the two guest sessions start with the two devices in slots 0 and 1 and a
 * preamble (context, queue, buffer, built program, kernels with arguments set) so that short programs do real work.
 */
export interface ProgramRun {
  readonly model: ProgramModel;
  readonly real: ProgramReal;
  close(): Promise<void>;
}

/** A preamble that makes every kind of object, in slots 2 (context) to 7. */
export const PREAMBLE: readonly Op[] = [
  { op: 'context', devs: 2 },
  { op: 'queue', ctx: { k: 0, live: true }, dev: 1 },
  { op: 'buffer', ctx: { k: 0, live: true }, size: 64, host: true, seed: 5 },
  { op: 'program', ctx: { k: 0, live: true }, source: 0 },
  { op: 'build', prog: { k: 0, live: true }, options: 0 },
  { op: 'kernel', prog: { k: 0, live: true }, name: 2 }, // scale(buffer, float)
  { op: 'setArg', kernel: { k: 0, live: true }, index: 0, match: true, buffer: 0, float: 0 },
  { op: 'setArg', kernel: { k: 0, live: true }, index: 1, match: true, buffer: 0, float: 0 },
];

/** Opens the three worlds on `worker` and runs the preamble. */
export async function startProgram(worker: Worker): Promise<ProgramRun> {
  const wholeGuest = await openRecordedGuest(toyaccSpec, worker);
  const movedGuest = await openRecordedGuest(toyaccSpec, worker);
  const toy = new ToyaccModel();
  const model: ProgramModel = { toy, world: { name: 'model', api: toy as unknown as AnyApi, slots: [] }, known: [], migrations: 0 };
  const real: ProgramReal = {
    whole: { name: 'whole', api: wholeGuest.api as AnyApi, slots: [], guest: wholeGuest },
    moved: { name: 'moved', api: movedGuest.api as AnyApi, slots: [], guest: movedGuest },
    trace: [],
    migrations: [],
  };
  for (const w of [model.world, real.whole, real.moved]) {
    const { ret, outs } = await w.api.tq_get_devices!(2, true);
    assert.is(ret, TQ.SUCCESS);
    w.slots.push(...(outs.devices as unknown[]));
  }
  model.known.push(...deviceSlots());
  for (const op of PREAMBLE) await new OpCommand(op as Exclude<Op, { op: 'migrate' }>).run(model, real);
  return {
    model, real,
    async close() {
      await wholeGuest.close();
      await movedGuest.close();
    },
  };
}

/** Contents of every buffer the application still holds, per world: model, whole, moved. */
export async function finalBuffers(run: ProgramRun): Promise<{ model: Record<number, number[]>; whole: Record<number, number[]>; moved: Record<number, number[]> }> {
  const out = { model: {} as Record<number, number[]>, whole: {} as Record<number, number[]>, moved: {} as Record<number, number[]> };
  const objects = (run.model.toy as unknown as { objects: Map<number, { data?: Uint8Array }> }).objects;
  for (const [slot, info] of run.model.known.entries()) {
    if (info === null || info.kind !== 'buffer' || info.refs <= 0) continue;
    out.model[slot] = [...objects.get((run.model.world.slots[slot] as { id: number }).id)!.data!];
    out.whole[slot] = [...await run.real.whole.guest.session.extractState((run.real.whole.slots[slot] as { id: number }).id)];
    out.moved[slot] = [...await run.real.moved.guest.session.extractState((run.real.moved.slots[slot] as { id: number }).id)];
  }
  return out;
}

/** The journal's records without their times. */
export async function journalRecords(guest: RecordedGuest): Promise<Omit<JournalRecord, 't'>[]> {
  await guest.recording.journal.flush();
  const out: Omit<JournalRecord, 't'>[] = [];
  for await (const { t: _t, ...r } of guest.recording.journal.records()) out.push(JSON.parse(JSON.stringify(r)) as Omit<JournalRecord, 't'>);
  return out;
}

/**
 * Runs a fixed program (preamble, then `ops`, skipping those whose precondition fails) and the final checks; returns
 * the run, still open, for more assertions. Throws at the first divergence.
 */
export async function runProgram(worker: Worker, ops: readonly Op[]): Promise<ProgramRun> {
  const run = await startProgram(worker);
  try {
    for (const op of ops) {
      const command = commandOf(op);
      if (command.check(run.model)) await command.run(run.model, run.real);
    }
    await checkFinal(run);
  } catch (error) {
    await run.close();
    throw error;
  }
  return run;
}

/**
 * The final checks of a program: the buffers the application holds have the same contents in the three worlds; both
 * sessions journaled the same records (the migrations did not disturb recording); and replaying the whole journal of
 * `whole` (the longest prefix) onto a fresh worker gives its buffers back.
 */
export async function checkFinal(run: ProgramRun): Promise<void> {
  const trace = `\n  ${run.real.trace.join('\n  ')}`;
  const buffers = await finalBuffers(run);
  assert.equal(buffers.whole, buffers.model, `final buffers, whole vs model:${trace}`);
  assert.equal(buffers.moved, buffers.model, `final buffers, moved vs model:${trace}`);
  assert.equal(await journalRecords(run.real.moved.guest), await journalRecords(run.real.whole.guest), `journals, moved vs whole:${trace}`);
  const before = handleTable(run.real.whole.guest);
  await migrate(run.real.whole.guest);
  assert.equal(handleTable(run.real.whole.guest), before, `handle table after replaying the whole journal:${trace}`);
  assert.equal((await finalBuffers(run)).whole, buffers.model, `final buffers after replaying the whole journal:${trace}`);
}

/**
 * Runs the preamble and `ops` on the model alone (no workers): what each call gave, for checks of the generator
 * itself that must not depend on the system under test.
 */
export async function runOnModel(ops: readonly Op[]): Promise<{ readonly steps: { readonly call: string; readonly result: Record<string, unknown> }[]; readonly known: readonly (SlotInfo | null)[] }> {
  const toy = new ToyaccModel();
  const world: World = { name: 'model', api: toy as unknown as AnyApi, slots: [] };
  world.slots.push(...((await world.api.tq_get_devices!(2, true)).outs.devices as unknown[]));
  const known: (SlotInfo | null)[] = deviceSlots();
  const steps: { call: string; result: Record<string, unknown> }[] = [];
  for (const op of [...PREAMBLE, ...ops]) {
    if (!applicable(op, known)) continue;
    if (op.op === 'migrate') {
      steps.push({ call: '-- migrate', result: {} });
      continue;
    }
    const call = callOf(op, known);
    const result = await observe(world, call);
    steps.push({ call: describe(call), result });
    learn(known, call, result);
  }
  return { steps, known };
}
