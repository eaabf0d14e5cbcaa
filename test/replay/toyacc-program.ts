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
import type { CallResult } from '../../src/guest/call-shape.js';
import type { LocalChannel } from '../../src/transport/local.js';
import type { Worker } from '../../src/worker/worker.js';
import type { Migration, RecordedGuest } from './helpers.js';
import { migrate, openRecordedGuest } from './helpers.js';

export type Kind = 'device' | 'context' | 'queue' | 'buffer' | 'program' | 'kernel';
type AnyApi = Record<string, (...args: unknown[]) => Promise<CallResult>>;

/** A pick among the slots of a kind: `k` modulo their number; `live` prefers those the application still holds. */
export interface Ref {
  readonly k: number;
  readonly live: boolean;
}

export const SOURCES = ['fill axpy scale checksum', 'fill; scale', 'checksum axpy', 'fill bogus', ''];
export const OPTIONS = [null, '-O2', '-O3'];
export const KERNELS = ['fill', 'axpy', 'scale', 'checksum', 'nope'];
export const FLOATS = [1.5, -2, 0.5, 3];
const KERNEL_ARGS: Record<string, readonly ('buf' | 'float')[]> = {
  fill: ['buf', 'float'], axpy: ['float', 'buf', 'buf'], scale: ['buf', 'float'], checksum: ['buf', 'buf'],
};
export const INFO: Record<'context' | 'buffer' | 'program', readonly number[]> = {
  context: [TQ.CONTEXT_REFCOUNT],
  buffer: [TQ.BUFFER_REFCOUNT, TQ.BUFFER_SIZE],
  program: [TQ.PROGRAM_REFCOUNT, TQ.PROGRAM_BUILD_LOG, TQ.PROGRAM_KERNEL_NAMES],
};

/** One step of a program. */
export type Op =
  | { readonly op: 'context'; readonly devs: 0 | 1 | 2 }
  | { readonly op: 'queue'; readonly ctx: Ref; readonly dev: 0 | 1 }
  | { readonly op: 'buffer'; readonly ctx: Ref; readonly size: number; readonly host: boolean; readonly seed: number }
  | { readonly op: 'program'; readonly ctx: Ref; readonly source: number }
  | { readonly op: 'build'; readonly prog: Ref; readonly options: number }
  | { readonly op: 'kernel'; readonly prog: Ref; readonly name: number }
  | { readonly op: 'setArg'; readonly kernel: Ref; readonly index: number; readonly match: boolean; readonly buffer: number; readonly float: number }
  | { readonly op: 'retain' | 'release'; readonly target: Ref }
  | { readonly op: 'write'; readonly queue: Ref; readonly buffer: number; readonly offset: number; readonly size: number; readonly seed: number }
  | { readonly op: 'read'; readonly queue: Ref; readonly buffer: number; readonly offset: number; readonly size: number }
  | { readonly op: 'launch'; readonly queue: Ref; readonly kernel: Ref; readonly n: number }
  | { readonly op: 'info'; readonly kind: 'context' | 'buffer' | 'program'; readonly target: Ref; readonly param: number }
  | { readonly op: 'devices' }
  | { readonly op: 'migrate' };

/** What the test knows of a slot (the same in every world while they agree). */
export interface SlotInfo {
  readonly kind: Kind;
  /** Application references. */
  refs: number;
  /** Slot of its context (-1 for devices and contexts). */
  readonly ctx: number;
  /** Kernel function name, for kernels. */
  readonly kernel?: string;
}

/** One world's handles by slot (null where the create failed). */
interface World {
  readonly name: string;
  readonly api: AnyApi;
  readonly slots: unknown[];
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

/** A world-independent argument. */
type Arg = { readonly slot: number } | { readonly slots: readonly number[] } | { readonly bytes: readonly number[] } | { readonly zeros: number } | { readonly value: unknown };

interface Call {
  readonly fn: string;
  readonly args: readonly Arg[];
  readonly observe: { readonly as: 'create'; readonly kind: Kind; readonly ctx: number; readonly kernel?: string } | { readonly as: 'status' } | { readonly as: 'read'; readonly arg: number } | { readonly as: 'devices' };
  readonly refs?: { readonly slot: number; readonly delta: 1 | -1 };
}

const f32 = (v: number): number[] => [...new Uint8Array(new Float32Array([v]).buffer)];

function slotsOf(known: readonly (SlotInfo | null)[], kind: Kind, live: boolean, ctx = -2): number[] {
  const all = known.flatMap((s, i) => (s !== null && s.kind === kind && (ctx === -2 || s.ctx === ctx) ? [i] : []));
  if (!live) return all;
  const held = all.filter((i) => known[i]!.refs > 0);
  return held.length > 0 ? held : all;
}

function pick(known: readonly (SlotInfo | null)[], kind: Kind, ref: Ref): number {
  const from = slotsOf(known, kind, ref.live);
  return from[ref.k % from.length]!;
}

/** A buffer of context `ctx` if there is one (held ones first), else any buffer. */
function pickBuffer(known: readonly (SlotInfo | null)[], k: number, ctx: number, onlyHeld = false): number | undefined {
  let from = slotsOf(known, 'buffer', true, ctx);
  if (from.length === 0) from = slotsOf(known, 'buffer', true);
  if (onlyHeld) from = from.filter((i) => known[i]!.refs > 0);
  return from.length === 0 ? undefined : from[k % from.length];
}

function has(known: readonly (SlotInfo | null)[], kind: Kind): boolean {
  return known.some((s) => s !== null && s.kind === kind);
}

/** Whether `op` can run on what the model knows (the command's precondition). */
export function applicable(op: Op, known: readonly (SlotInfo | null)[]): boolean {
  switch (op.op) {
    case 'context': case 'devices': case 'migrate': return true;
    case 'queue': case 'buffer': case 'program': return has(known, 'context');
    case 'build': case 'kernel': return has(known, 'program');
    case 'setArg': return has(known, 'kernel');
    case 'retain': case 'release': return known.some((s) => s !== null && s.kind !== 'device');
    case 'write': case 'read': return has(known, 'queue') && has(known, 'buffer');
    case 'launch': return has(known, 'queue') && has(known, 'kernel');
    case 'info': return has(known, op.kind);
  }
}

/** The call of `op` (not `migrate`), with slots picked by what the model knows. */
function toCall(op: Exclude<Op, { op: 'migrate' }>, known: readonly (SlotInfo | null)[]): Call {
  switch (op.op) {
    case 'context': {
      const devs = op.devs === 2 ? [0, 1] : [op.devs];
      return { fn: 'tq_create_context', args: [{ value: devs.length }, { slots: devs }], observe: { as: 'create', kind: 'context', ctx: -1 } };
    }
    case 'queue': {
      const ctx = pick(known, 'context', op.ctx);
      return { fn: 'tq_create_queue', args: [{ slot: ctx }, { slot: op.dev }], observe: { as: 'create', kind: 'queue', ctx } };
    }
    case 'buffer': {
      const ctx = pick(known, 'context', op.ctx);
      const host = op.host ? { bytes: Array.from({ length: op.size }, (_, i) => (op.seed + 7 * i) & 0xff) } : { value: null };
      return { fn: 'tq_create_buffer', args: [{ slot: ctx }, { value: op.host ? TQ.MEM_COPY_HOST : 0 }, { value: op.size }, host], observe: { as: 'create', kind: 'buffer', ctx } };
    }
    case 'program': {
      const ctx = pick(known, 'context', op.ctx);
      return { fn: 'tq_create_program', args: [{ slot: ctx }, { value: SOURCES[op.source] }], observe: { as: 'create', kind: 'program', ctx } };
    }
    case 'build':
      return { fn: 'tq_build_program', args: [{ slot: pick(known, 'program', op.prog) }, { value: OPTIONS[op.options] }], observe: { as: 'status' } };
    case 'kernel': {
      const prog = pick(known, 'program', op.prog);
      const name = KERNELS[op.name]!;
      return { fn: 'tq_create_kernel', args: [{ slot: prog }, { value: name }], observe: { as: 'create', kind: 'kernel', ctx: known[prog]!.ctx, kernel: name } };
    }
    case 'setArg': {
      const kernel = pick(known, 'kernel', op.kernel);
      const info = known[kernel]!;
      const wanted = KERNEL_ARGS[info.kernel ?? '']?.[op.index] ?? 'float';
      let kind = op.match ? wanted : wanted === 'buf' ? 'float' : 'buf';
      // Only buffers the application holds as values: a released one is a documented remoted/native divergence.
      const buffer = kind === 'buf' ? pickBuffer(known, op.buffer, info.ctx, true) : undefined;
      if (buffer === undefined) kind = 'float';
      const value = kind === 'buf' ? { slot: buffer! } : { bytes: f32(FLOATS[op.float]!) };
      return { fn: 'tq_set_kernel_arg', args: [{ slot: kernel }, { value: op.index }, { value: kind === 'buf' ? 8 : 4 }, value], observe: { as: 'status' } };
    }
    case 'retain': case 'release': {
      const objects = known.flatMap((s, i) => (s !== null && s.kind !== 'device' && (!op.target.live || s.refs > 0) ? [i] : []));
      const from = objects.length > 0 ? objects : known.flatMap((s, i) => (s !== null && s.kind !== 'device' ? [i] : []));
      const slot = from[op.target.k % from.length]!;
      return { fn: `tq_${op.op}_${known[slot]!.kind}`, args: [{ slot }], observe: { as: 'status' }, refs: { slot, delta: op.op === 'retain' ? 1 : -1 } };
    }
    case 'write': {
      const queue = pick(known, 'queue', op.queue);
      const buffer = pickBuffer(known, op.buffer, known[queue]!.ctx)!;
      const bytes = Array.from({ length: op.size }, (_, i) => (op.seed + 13 * i) & 0xff);
      return { fn: 'tq_enqueue_write', args: [{ slot: queue }, { slot: buffer }, { value: op.offset }, { value: op.size }, { bytes }], observe: { as: 'status' } };
    }
    case 'read': {
      const queue = pick(known, 'queue', op.queue);
      const buffer = pickBuffer(known, op.buffer, known[queue]!.ctx)!;
      return { fn: 'tq_enqueue_read', args: [{ slot: queue }, { slot: buffer }, { value: op.offset }, { value: op.size }, { zeros: op.size }], observe: { as: 'read', arg: 4 } };
    }
    case 'launch': {
      const kernel = pick(known, 'kernel', op.kernel);
      let queues = slotsOf(known, 'queue', op.queue.live, known[kernel]!.ctx);
      if (queues.length === 0) queues = slotsOf(known, 'queue', op.queue.live);
      return { fn: 'tq_enqueue_kernel', args: [{ slot: queues[op.queue.k % queues.length]! }, { slot: kernel }, { value: op.n }], observe: { as: 'status' } };
    }
    case 'devices':
      return { fn: 'tq_get_devices', args: [{ value: 2 }, { value: true }], observe: { as: 'devices' } };
    case 'info': {
      const params = INFO[op.kind];
      return {
        fn: `tq_get_${op.kind}_info`,
        args: [{ slot: pick(known, op.kind, op.target) }, { value: params[op.param % params.length] }, { value: 64 }, { zeros: 64 }],
        observe: { as: 'read', arg: 3 },
      };
    }
  }
}

function materialize(world: World, arg: Arg): unknown {
  if ('slot' in arg) return world.slots[arg.slot];
  if ('slots' in arg) return arg.slots.map((s) => world.slots[s]);
  if ('bytes' in arg) return Uint8Array.from(arg.bytes);
  if ('zeros' in arg) return new Uint8Array(arg.zeros);
  return arg.value;
}

/** What a call gives, in a form equal across worlds (no handle values). */
async function observe(world: World, call: Call): Promise<Record<string, unknown>> {
  const args = call.args.map((a) => materialize(world, a));
  let result: CallResult;
  try {
    result = await world.api[call.fn]!(...args);
  } catch (error) {
    return { threw: (error as AvaError).code ?? (error as Error).name, message: (error as Error).message };
  }
  switch (call.observe.as) {
    case 'create':
      world.slots.push(result.ret ?? null);
      return { created: result.ret !== null && result.ret !== undefined, errcode: result.outs.errcode_ret };
    case 'status':
      return { ret: result.ret };
    case 'devices':
      return { ret: result.ret, count: result.outs.count, n: (result.outs.devices as unknown[] | undefined)?.length };
    case 'read':
      // size_ret only on success: the guestlib leaves outs out on failure (the model zeroes them)
      return { ret: result.ret, size_ret: result.ret === TQ.SUCCESS ? result.outs.size_ret : undefined, bytes: [...(args[call.observe.arg] as Uint8Array)] };
  }
}

function describe(call: Call): string {
  return `${call.fn}(${call.args.map((a) => JSON.stringify(a)).join(', ')})`;
}

// ------------------------------------------------------------------------------------------------ commands

/** One toyacc call on the three worlds, compared. */
export class OpCommand implements fc.AsyncCommand<ProgramModel, ProgramReal> {
  constructor(readonly op: Exclude<Op, { op: 'migrate' }>) {}

  check(m: Readonly<ProgramModel>): boolean {
    return applicable(this.op, m.known);
  }

  async run(m: ProgramModel, r: ProgramReal): Promise<void> {
    const call = toCall(this.op, m.known);
    r.trace.push(describe(call));
    const expected = await observe(m.world, call);
    const whole = await observe(r.whole, call);
    const moved = await observe(r.moved, call);
    const line = (o: Record<string, unknown>): string => JSON.stringify(o);
    if (line(whole) !== line(expected) || line(moved) !== line(expected)) {
      throw new Error(`divergence at call ${r.trace.length - 1} after ${r.migrations.length} migration(s):\n  ${r.trace.join('\n  ')}\n` +
        ` model: ${line(expected)}\n whole: ${line(whole)}\n moved: ${line(moved)}`);
    }
    if (call.observe.as === 'create') {
      const { kind, ctx, kernel } = call.observe;
      m.known.push(expected.created ? { kind, refs: 1, ctx, ...(kernel ? { kernel } : {}) } : null);
    }
    if (call.refs && expected.ret === TQ.SUCCESS) m.known[call.refs.slot]!.refs += call.refs.delta;
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

const refArb: fc.Arbitrary<Ref> = fc.record({ k: fc.nat({ max: 15 }), live: fc.nat({ max: 4 }).map((n) => n !== 0) });

/** Every op, weighted towards programs that build state and use it. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('context' as const), devs: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('queue' as const), ctx: refArb, dev: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('buffer' as const), ctx: refArb, size: fc.constantFrom(16, 64, 64, 0), host: fc.boolean(), seed: fc.nat({ max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('program' as const), ctx: refArb, source: fc.constantFrom(0, 0, 1, 2, 3, 4) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('build' as const), prog: refArb, options: fc.constantFrom(0, 0, 1, 2) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('kernel' as const), prog: refArb, name: fc.constantFrom(0, 1, 2, 3, 0, 2, 3, 4) }) },
  {
    weight: 7,
    arbitrary: fc.record({
      op: fc.constant('setArg' as const), kernel: refArb, index: fc.constantFrom(0, 1, 2, 0, 1, 3),
      match: fc.nat({ max: 7 }).map((n) => n !== 0), buffer: fc.nat({ max: 15 }), float: fc.nat({ max: FLOATS.length - 1 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('retain' as const), target: refArb }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('release' as const), target: refArb }) },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('write' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16, 16), seed: fc.nat({ max: 255 }) }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('launch' as const), queue: refArb, kernel: refArb, n: fc.constantFrom(1, 4, 4, 16) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('info' as const), kind: fc.constantFrom('context' as const, 'buffer' as const, 'program' as const), target: refArb, param: fc.nat({ max: 2 }) }) },
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
  model.known.push({ kind: 'device', refs: 1, ctx: -1 }, { kind: 'device', refs: 1, ctx: -1 });
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
  const known: (SlotInfo | null)[] = [{ kind: 'device', refs: 1, ctx: -1 }, { kind: 'device', refs: 1, ctx: -1 }];
  const steps: { call: string; result: Record<string, unknown> }[] = [];
  for (const op of [...PREAMBLE, ...ops]) {
    if (!applicable(op, known)) continue;
    if (op.op === 'migrate') {
      steps.push({ call: '-- migrate', result: {} });
      continue;
    }
    const call = toCall(op, known);
    const result = await observe(world, call);
    steps.push({ call: describe(call), result });
    if (call.observe.as === 'create') {
      const { kind, ctx, kernel } = call.observe;
      known.push(result.created ? { kind, refs: 1, ctx, ...(kernel ? { kernel } : {}) } : null);
    }
    if (call.refs && result.ret === TQ.SUCCESS) known[call.refs.slot]!.refs += call.refs.delta;
  }
  return { steps, known };
}
