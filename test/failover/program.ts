/**
 * Random toyacc programs for the failover property: generated as data ({@link Op}), planned on the TypeScript model
 * (fixtures/toyacc/model.ts) into a list of calls with their expected observations, then run on a guest session with
 * a hook before every call (where the test kills the worker or takes a checkpoint) and compared call by call.
 *
 * Two modes, as the guestlib has them:
 * - `return`: every call waits for its reply, failures come back as statuses (failing calls are part of programs);
 * - `throw`: calls whose outcome is known in advance (creates, set_arg, writes, launches, releases...) are posted
 *   without waiting and batched, so the worker may die with posted calls it never ran. A posted call that would fail
 *   surfaces later as ERR_AVA_ASYNC_CALL_FAILED, not as its status, so the planner leaves out asynchronous calls that
 *   fail on the model (they change nothing there); waiting calls that fail throw ApiStatusError, observed as status.
 */
import fc from 'fast-check';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { ToyaccModel } from '../../fixtures/toyacc/model.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { CallResult } from '../../src/guest/call-shape.js';
import { planOf } from '../../src/spec/plan.js';

export type Mode = 'return' | 'throw';
export type Kind = 'device' | 'context' | 'queue' | 'buffer' | 'program' | 'kernel';
type AnyApi = Record<string, (...args: unknown[]) => Promise<CallResult>>;

/** A pick among the slots of a kind: `k` modulo their number; `live` prefers those the application holds. */
export interface Ref {
  readonly k: number;
  readonly live: boolean;
}

const SOURCES = ['fill axpy scale checksum', 'fill scale', 'checksum axpy', 'fill bogus'];
const OPTIONS = [null, '-O2', '-O3'];
const KERNELS = ['fill', 'axpy', 'scale', 'checksum', 'nope'];
const FLOATS = [1.5, -2, 0.5, 3];
const KERNEL_ARGS: Record<string, readonly ('buf' | 'float')[]> = {
  fill: ['buf', 'float'], axpy: ['float', 'buf', 'buf'], scale: ['buf', 'float'], checksum: ['buf', 'buf'],
};
const INFO: Record<'context' | 'buffer' | 'program', readonly number[]> = {
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
  | { readonly op: 'info'; readonly kind: 'context' | 'buffer' | 'program'; readonly target: Ref; readonly param: number };

/** What the test knows of a slot. */
export interface SlotInfo {
  readonly kind: Kind;
  /** Application references. */
  refs: number;
  /** Slot of its context (-1 for devices and contexts). */
  readonly ctx: number;
  readonly kernel?: string;
  /** Buffer size. */
  readonly size?: number;
}

type Arg = { readonly slot: number } | { readonly slots: readonly number[] } | { readonly bytes: readonly number[] } | { readonly zeros: number } | { readonly value: unknown };

/** One call, world-independent. */
export interface Call {
  readonly fn: string;
  readonly args: readonly Arg[];
  readonly observe:
    | { readonly as: 'create'; readonly kind: Kind; readonly ctx: number; readonly kernel?: string; readonly size?: number }
    | { readonly as: 'status' }
    | { readonly as: 'read'; readonly arg: number }
    | { readonly as: 'devices' };
  readonly refs?: { readonly slot: number; readonly delta: 1 | -1 };
}

/** Handles by slot, per world (null where a create failed). */
export interface World {
  readonly api: AnyApi;
  readonly slots: unknown[];
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

function pickBuffer(known: readonly (SlotInfo | null)[], k: number, ctx: number, onlyHeld = false): number | undefined {
  let from = slotsOf(known, 'buffer', true, ctx);
  if (from.length === 0) from = slotsOf(known, 'buffer', true);
  if (onlyHeld) from = from.filter((i) => known[i]!.refs > 0);
  return from.length === 0 ? undefined : from[k % from.length];
}

const has = (known: readonly (SlotInfo | null)[], kind: Kind): boolean => known.some((s) => s !== null && s.kind === kind);

function applicable(op: Op, known: readonly (SlotInfo | null)[]): boolean {
  switch (op.op) {
    case 'context': return true;
    case 'queue': case 'buffer': case 'program': return has(known, 'context');
    case 'build': case 'kernel': return has(known, 'program');
    case 'setArg': return has(known, 'kernel');
    case 'retain': case 'release': return known.some((s) => s !== null && s.kind !== 'device');
    case 'write': case 'read': return has(known, 'queue') && has(known, 'buffer');
    case 'launch': return has(known, 'queue') && has(known, 'kernel');
    case 'info': return has(known, op.kind);
  }
}

function toCall(op: Op, known: readonly (SlotInfo | null)[]): Call {
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
      return {
        fn: 'tq_create_buffer', args: [{ slot: ctx }, { value: op.host ? TQ.MEM_COPY_HOST : 0 }, { value: op.size }, host],
        observe: { as: 'create', kind: 'buffer', ctx, size: op.size },
      };
    }
    case 'program': {
      const ctx = pick(known, 'context', op.ctx);
      return { fn: 'tq_create_program', args: [{ slot: ctx }, { value: SOURCES[op.source % SOURCES.length] }], observe: { as: 'create', kind: 'program', ctx } };
    }
    case 'build':
      return { fn: 'tq_build_program', args: [{ slot: pick(known, 'program', op.prog) }, { value: OPTIONS[op.options % OPTIONS.length] }], observe: { as: 'status' } };
    case 'kernel': {
      const prog = pick(known, 'program', op.prog);
      const name = KERNELS[op.name % KERNELS.length]!;
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
      const value = kind === 'buf' ? { slot: buffer! } : { bytes: f32(FLOATS[op.float % FLOATS.length]!) };
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

/** What a call gives, equal across worlds (no handle values); creates push the new handle into the world's slots. */
export async function observe(world: World, call: Call): Promise<Record<string, unknown>> {
  const args = call.args.map((a) => materialize(world, a));
  let result: CallResult;
  try {
    result = await world.api[call.fn]!(...args);
  } catch (error) {
    // `throw` mode: a failure status of a waiting call, or the invalid-handle status of a call the worker refused
    // (ERR_AVA_API_STATUS, HandleError: both carry the status in their details). The model never throws.
    const status = AvaError.isAvaError(error) ? (error.details as { status?: unknown }).status : undefined;
    if (typeof status === 'number') result = { ret: status, outs: {} };
    else return { threw: AvaError.isAvaError(error) ? error.code : (error as Error).name, message: (error as Error).message };
  }
  switch (call.observe.as) {
    case 'create':
      world.slots.push(result.ret ?? null);
      return { created: result.ret !== null && result.ret !== undefined, errcode: result.outs.errcode_ret ?? TQ.SUCCESS };
    case 'status':
      return { ret: result.ret };
    case 'devices': {
      const devices = (result.outs.devices as unknown[] | undefined) ?? [];
      world.slots.push(...devices);
      return { ret: result.ret, count: result.outs.count, n: devices.length };
    }
    case 'read':
      return { ret: result.ret, size_ret: result.ret === TQ.SUCCESS ? result.outs.size_ret : undefined, bytes: [...(args[call.observe.arg] as Uint8Array)] };
  }
}

/** Whether the guestlib posts `fn` without waiting in `mode` (remote channels, the proxy's default). */
export function posted(fn: string, mode: Mode): boolean {
  return mode === 'throw' && planOf(toyaccSpec.fn.get(fn)!).asyncEligible;
}

/** A planned call with what the model gave. */
export interface Step {
  readonly call: Call;
  readonly expected: Record<string, unknown>;
  readonly posted: boolean;
  readonly text: string;
}

/** A program planned on the model. */
export interface Planned {
  readonly steps: readonly Step[];
  /** What is known of every slot at the end. */
  readonly known: readonly (SlotInfo | null)[];
  /** Contents of the buffers the application holds at the end, by slot. */
  readonly buffers: ReadonlyMap<number, number[]>;
  /** tq_debug_live_objects at the end. */
  readonly live: number;
}

const DEVICES: Call = { fn: 'tq_get_devices', args: [{ value: 2 }, { value: true }], observe: { as: 'devices' } };

function describe(call: Call): string {
  return `${call.fn}(${call.args.map((a) => ('bytes' in a ? `<${a.bytes.length} bytes>` : JSON.stringify(a))).join(', ')})`;
}

/**
 * Runs `ops` on a fresh model: call 0 is tq_get_devices (the devices in slots 0 and 1), then every op whose
 * precondition holds (in `throw` mode, without the posted calls that fail on the model).
 */
export async function plan(ops: readonly Op[], mode: Mode): Promise<Planned> {
  const toy = new ToyaccModel();
  const world: World = { api: toy as unknown as AnyApi, slots: [] };
  const known: (SlotInfo | null)[] = [];
  const steps: Step[] = [{ call: DEVICES, expected: await observe(world, DEVICES), posted: false, text: describe(DEVICES) }];
  known.push({ kind: 'device', refs: 1, ctx: -1 }, { kind: 'device', refs: 1, ctx: -1 });
  for (const op of ops) {
    if (!applicable(op, known)) continue;
    const call = toCall(op, known);
    const expected = await observe(world, call);
    const failed = call.observe.as === 'create' ? !expected.created : expected.ret !== TQ.SUCCESS;
    const isPosted = posted(call.fn, mode);
    if (isPosted && failed) {
      // Left out: the model changed nothing (a failed create issued no handle; drop the null slot it pushed).
      if (call.observe.as === 'create') world.slots.pop();
      continue;
    }
    steps.push({ call, expected, posted: isPosted, text: describe(call) });
    if (call.observe.as === 'create') {
      const { kind, ctx, kernel, size } = call.observe;
      known.push(expected.created ? { kind, refs: 1, ctx, ...(kernel ? { kernel } : {}), ...(size === undefined ? {} : { size }) } : null);
    }
    if (call.refs && expected.ret === TQ.SUCCESS) known[call.refs.slot]!.refs += call.refs.delta;
  }
  const objects = (toy as unknown as { objects: Map<number, { data?: Uint8Array }> }).objects;
  const buffers = new Map<number, number[]>();
  for (const [slot, info] of known.entries()) {
    if (info === null || info.kind !== 'buffer' || info.refs <= 0) continue;
    buffers.set(slot, [...objects.get((world.slots[slot] as { id: number }).id)!.data!]);
  }
  return { steps, known, buffers, live: (await toy.tq_debug_live_objects()).ret as number };
}

// ------------------------------------------------------------------------------------------------ arbitraries

const refArb: fc.Arbitrary<Ref> = fc.record({ k: fc.nat({ max: 15 }), live: fc.nat({ max: 4 }).map((n) => n !== 0) });

/** Every op, weighted towards programs that build state and use it. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ op: fc.constant('context' as const), devs: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('queue' as const), ctx: refArb, dev: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('buffer' as const), ctx: refArb, size: fc.constantFrom(16, 64, 64, 0), host: fc.boolean(), seed: fc.nat({ max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('program' as const), ctx: refArb, source: fc.constantFrom(0, 0, 1, 2, 3) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('build' as const), prog: refArb, options: fc.constantFrom(0, 0, 1, 2) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('kernel' as const), prog: refArb, name: fc.constantFrom(0, 1, 2, 3, 0, 2, 3, 4) }) },
  {
    weight: 7,
    arbitrary: fc.record({
      op: fc.constant('setArg' as const), kernel: refArb, index: fc.constantFrom(0, 1, 2, 0, 1, 3),
      match: fc.nat({ max: 7 }).map((n) => n !== 0), buffer: fc.nat({ max: 15 }), float: fc.nat({ max: FLOATS.length - 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('retain' as const), target: refArb }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('release' as const), target: refArb }) },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('write' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16, 16), seed: fc.nat({ max: 255 }) }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16) }) },
  { weight: 7, arbitrary: fc.record({ op: fc.constant('launch' as const), queue: refArb, kernel: refArb, n: fc.constantFrom(1, 4, 4, 16) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('info' as const), kind: fc.constantFrom('context' as const, 'buffer' as const, 'program' as const), target: refArb, param: fc.nat({ max: 2 }) }) },
);

const L = { k: 0, live: true };

/** A setup that makes every kind of object, so that short programs do real work (calls 1 to 9 when kept whole). */
export const SETUP: readonly Op[] = [
  { op: 'context', devs: 2 },
  { op: 'queue', ctx: L, dev: 1 },
  { op: 'buffer', ctx: L, size: 64, host: true, seed: 5 },
  { op: 'buffer', ctx: L, size: 64, host: false, seed: 0 },
  { op: 'program', ctx: L, source: 0 },
  { op: 'build', prog: L, options: 0 },
  { op: 'kernel', prog: L, name: 2 }, // scale(buffer, float)
  { op: 'setArg', kernel: L, index: 0, match: true, buffer: 0, float: 0 },
  { op: 'setArg', kernel: L, index: 1, match: true, buffer: 0, float: 0 },
];

/** Programs of up to `maxOps` ops after a prefix of the setup (whole most of the time). */
export function programArb(maxOps: number): fc.Arbitrary<Op[]> {
  const prefix = fc.oneof({ weight: 3, arbitrary: fc.constant(SETUP.length) }, { weight: 1, arbitrary: fc.nat({ max: SETUP.length }) });
  return fc.tuple(prefix, fc.array(opArb, { maxLength: maxOps })).map(([n, ops]) => [...SETUP.slice(0, n), ...ops]);
}
