/**
 * The vocabulary of random toyacc programs, shared by the property tests that generate them:
 *
 * - test/failover/program.ts: plans programs on the model, then runs them with a hook before every call;
 * - test/replay/toyacc-program.ts: runs them as fast-check commands, with migrations between calls;
 * - test/guest/toyacc-equivalence.test.ts: only the call shapes ({@link Arg}, {@link invoke}, {@link describe}); its
 *   programs have ops of their own, which reach for wrong kinds and released handles on purpose.
 *
 * A program is data: an {@link ToyOp} says what to do and picks its objects with a {@link Ref} (an index among the
 * slots of a kind that the test knows of), never with a handle. Shrinking then keeps programs meaningful, and the same
 * op runs on any number of worlds (the model, guest sessions, the native library): {@link toCall} turns it into a
 * world-independent {@link Call}, and {@link invoke} puts each world's own handles into it.
 *
 * What differs between the properties stays with them and comes in as a parameter: the program sources (which are
 * part of what a property generates), the weights of the ops, how a result is observed (the failover property's
 * `throw` mode), and what a trace line shows.
 */
import fc from 'fast-check';
import { TQ } from '../../fixtures/toyacc/constants.js';
import type { CallResult } from '../../src/guest/call-shape.js';

// ------------------------------------------------------------------------------------------------ constants

/**
 * Build options, by index: none, one the toy compiler accepts, and `-O3`, an option it does not know
 * (TQ_BUILD_FAILURE), so that programs also hold programs whose build failed.
 */
export const OPTIONS: readonly (string | null)[] = [null, '-O2', '-O3'];

/** Kernel names, by index: the four toyacc kernels and one that no source defines (TQ_INVALID_KERNEL_NAME). */
export const KERNELS: readonly string[] = ['fill', 'axpy', 'scale', 'checksum', 'nope'];

/** Float kernel arguments, by index: a few distinct values (fractional, negative) so that launches change buffers differently. */
export const FLOATS: readonly number[] = [1.5, -2, 0.5, 3];

/**
 * The argument kinds of each kernel, by index: a `setArg` that should match sets what the kernel wants, one that
 * should not sets the other kind, so that set_arg both succeeds and fails (TQ_INVALID_ARG_VALUE).
 */
export const KERNEL_ARGS: Readonly<Record<string, readonly ('buf' | 'float')[]>> = {
  fill: ['buf', 'float'], axpy: ['float', 'buf', 'buf'], scale: ['buf', 'float'], checksum: ['buf', 'buf'],
};

/**
 * Info parameters asked of each kind, by index: only those whose value is no handle (a handle's bytes differ from
 * world to world, so they could not be compared).
 */
export const INFO: Readonly<Record<'context' | 'buffer' | 'program', readonly number[]>> = {
  context: [TQ.CONTEXT_REFCOUNT],
  buffer: [TQ.BUFFER_REFCOUNT, TQ.BUFFER_SIZE],
  program: [TQ.PROGRAM_REFCOUNT, TQ.PROGRAM_BUILD_LOG, TQ.PROGRAM_KERNEL_NAMES],
};

// ------------------------------------------------------------------------------------------------ types

/** The kinds of toyacc objects; a slot holds one object of one kind. */
export type Kind = 'device' | 'context' | 'queue' | 'buffer' | 'program' | 'kernel';

/** A toyacc API as the tests call it, by function name: the model, a guestlib or the native library alike. */
export type AnyApi = Record<string, (...args: unknown[]) => Promise<CallResult>>;

/** A pick among the slots of a kind: `k` modulo their number; `live` prefers those the application still holds. */
export interface Ref {
  readonly k: number;
  readonly live: boolean;
}

/**
 * One step of a program, the ops that every generator here shares (the properties add their own, such as replay's
 * `devices` and `migrate`). Indices into {@link OPTIONS}, {@link KERNELS}, {@link FLOATS}, {@link INFO} and the
 * property's sources wrap around.
 */
export type ToyOp =
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

/** What the test knows of a slot: the same in every world while they agree, so picks are the same everywhere. */
export interface SlotInfo {
  readonly kind: Kind;
  /** Application references: 0 once released, so picks can prefer live objects. */
  refs: number;
  /** Slot of its context (-1 for devices and contexts): picks prefer objects of the same context. */
  readonly ctx: number;
  /** Kernel function name, for kernels: `setArg` looks up the argument kinds it wants. */
  readonly kernel?: string;
  /** Buffer size, for buffers. */
  readonly size?: number;
}

/**
 * A world-independent argument: a slot (each world puts its own handle there), slots, bytes, a zeroed output buffer
 * of that many bytes, or a plain value.
 */
export type Arg =
  | { readonly slot: number }
  | { readonly slots: readonly number[] }
  | { readonly bytes: readonly number[] }
  | { readonly zeros: number }
  | { readonly value: unknown };

/** A call by name with world-independent arguments: what {@link invoke} runs and {@link describe} prints. */
export interface CallShape {
  readonly fn: string;
  readonly args: readonly Arg[];
}

/**
 * How a call's result is observed: a create (what the new slot will hold), a status, a read of output argument
 * `arg`, or the devices query.
 */
export type Observation =
  | { readonly as: 'create'; readonly kind: Kind; readonly ctx: number; readonly kernel?: string; readonly size?: number }
  | { readonly as: 'status' }
  | { readonly as: 'read'; readonly arg: number }
  | { readonly as: 'devices' };

/** One call of a program, world-independent. */
export interface Call extends CallShape {
  readonly observe: Observation;
  /** For retain/release: the slot whose application references change, when the call succeeds. */
  readonly refs?: { readonly slot: number; readonly delta: 1 | -1 };
}

/** One world's handles by slot (null where a create failed, so that slots stay aligned across worlds). */
export interface World {
  readonly api: AnyApi;
  readonly slots: unknown[];
}

// ------------------------------------------------------------------------------------------------ picking slots

/** A float's 4 bytes, as a kernel argument value. */
export const f32 = (v: number): number[] => [...new Uint8Array(new Float32Array([v]).buffer)];

/** The slots of `kind` (of context `ctx` unless -2); with `live`, the held ones if there are any. */
function slotsOf(known: readonly (SlotInfo | null)[], kind: Kind, live: boolean, ctx = -2): number[] {
  const all = known.flatMap((s, i) => (s !== null && s.kind === kind && (ctx === -2 || s.ctx === ctx) ? [i] : []));
  if (!live) return all;
  const held = all.filter((i) => known[i]!.refs > 0);
  return held.length > 0 ? held : all;
}

/** The slot `ref` picks among those of `kind` (there must be one: see {@link applicable}). */
function pick(known: readonly (SlotInfo | null)[], kind: Kind, ref: Ref): number {
  const from = slotsOf(known, kind, ref.live);
  return from[ref.k % from.length]!;
}

/**
 * A buffer of context `ctx` if there is one (held ones first), else any buffer: a read or write across contexts fails
 * (TQ_INVALID_CONTEXT), so those come only where the queue's context has no buffer. With `onlyHeld`, none rather
 * than a released one.
 */
function pickBuffer(known: readonly (SlotInfo | null)[], k: number, ctx: number, onlyHeld = false): number | undefined {
  let from = slotsOf(known, 'buffer', true, ctx);
  if (from.length === 0) from = slotsOf(known, 'buffer', true);
  if (onlyHeld) from = from.filter((i) => known[i]!.refs > 0);
  return from.length === 0 ? undefined : from[k % from.length];
}

const has = (known: readonly (SlotInfo | null)[], kind: Kind): boolean => known.some((s) => s !== null && s.kind === kind);

/** The slots the test knows of before any op: the two devices, in slots 0 and 1 (programs start with tq_get_devices). */
export function deviceSlots(): SlotInfo[] {
  return [{ kind: 'device', refs: 1, ctx: -1 }, { kind: 'device', refs: 1, ctx: -1 }];
}

// ------------------------------------------------------------------------------------------------ ops to calls

/** Whether `op` can run on what the test knows: every object it picks has a slot (released ones count). */
export function applicable(op: ToyOp, known: readonly (SlotInfo | null)[]): boolean {
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

/**
 * The call of `op` (which must be {@link applicable}), with slots picked by what the test knows. `sources` are the
 * program sources that `op.source` indexes: they are the property's own (see {@link opArbs}).
 */
export function toCall(op: ToyOp, known: readonly (SlotInfo | null)[], sources: readonly string[]): Call {
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
      return { fn: 'tq_create_program', args: [{ slot: ctx }, { value: sources[op.source % sources.length] }], observe: { as: 'create', kind: 'program', ctx } };
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
      // Any object but a device (they have no lifetime functions); released ones too unless `live` and one is held.
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
      // A queue of the kernel's context if there is one: a launch across contexts always fails (TQ_INVALID_CONTEXT).
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

/** The devices query that programs start with: both devices (they take slots 0 and 1 where the caller keeps them). */
export const DEVICES_CALL: Call = { fn: 'tq_get_devices', args: [{ value: 2 }, { value: true }], observe: { as: 'devices' } };

/**
 * Updates what the test knows after `call` gave `observed` (by {@link observeResult}): a create adds a slot (null if
 * it failed, as in the worlds' slots), a successful retain or release moves the application's references.
 */
export function learn(known: (SlotInfo | null)[], call: Call, observed: Record<string, unknown>): void {
  if (call.observe.as === 'create') {
    const { kind, ctx, kernel, size } = call.observe;
    known.push(observed.created ? { kind, refs: 1, ctx, ...(kernel ? { kernel } : {}), ...(size === undefined ? {} : { size }) } : null);
  }
  if (call.refs && observed.ret === TQ.SUCCESS) known[call.refs.slot]!.refs += call.refs.delta;
}

// ------------------------------------------------------------------------------------------------ running calls

/** `arg` in `world`: slots become that world's handles, byte lists fresh buffers (calls may write into them). */
export function materialize(world: Pick<World, 'slots'>, arg: Arg): unknown {
  if ('slot' in arg) return world.slots[arg.slot];
  if ('slots' in arg) return arg.slots.map((s) => world.slots[s]);
  if ('bytes' in arg) return Uint8Array.from(arg.bytes);
  if ('zeros' in arg) return new Uint8Array(arg.zeros);
  return arg.value;
}

/** What {@link invoke} gives: the arguments it passed (reads observe an output argument) and the result or error. */
export type Invoked =
  | { readonly args: unknown[]; readonly result: CallResult }
  | { readonly args: unknown[]; readonly error: unknown };

/**
 * Runs `call` in `world` and catches what it throws: how a thrown error is observed depends on the property (a
 * status in the failover property's `throw` mode, an observation of its own elsewhere).
 */
export async function invoke(world: World, call: CallShape): Promise<Invoked> {
  const args = call.args.map((a) => materialize(world, a));
  try {
    // Called on the api, as its method: the model's functions are class methods and need their receiver.
    return { args, result: await world.api[call.fn]!(...args) };
  } catch (error) {
    return { args, error };
  }
}

/**
 * What a create, status or read gave, in a form equal across worlds (no handle values); a create pushes its handle
 * (null if none) into the world's slots. `errcode`, when given, stands for an errcode_ret that the outs leave out
 * (the failover property rebuilds results without outs from thrown statuses); without it, a missing one stays
 * missing. Devices observations are the property's own: whether their handles take slots depends on whether the
 * program keeps them.
 */
export function observeResult(world: World, observe: Exclude<Observation, { as: 'devices' }>, args: readonly unknown[], result: CallResult, errcode?: number): Record<string, unknown> {
  const { ret, outs } = result;
  switch (observe.as) {
    case 'create':
      world.slots.push(ret ?? null);
      return { created: ret !== null && ret !== undefined, errcode: errcode === undefined ? outs.errcode_ret : outs.errcode_ret ?? errcode };
    case 'status':
      return { ret };
    case 'read':
      // size_ret only on success: the guestlib leaves outs out on failure (the model zeroes them)
      return { ret, size_ret: ret === TQ.SUCCESS ? outs.size_ret : undefined, bytes: [...(args[observe.arg] as Uint8Array)] };
  }
}

/**
 * A call as a line of a trace (the list printed at a divergence). With `shortBytes`, byte arguments show as their
 * length: the failover traces are long and their bytes follow from the op's seed.
 */
export function describe(call: CallShape, options: { readonly shortBytes?: boolean } = {}): string {
  const arg = (a: Arg): string => (options.shortBytes && 'bytes' in a ? `<${a.bytes.length} bytes>` : JSON.stringify(a));
  return `${call.fn}(${call.args.map(arg).join(', ')})`;
}

// ------------------------------------------------------------------------------------------------ arbitraries

/** A {@link Ref}: one of up to 16 slots, preferring held objects 4 times in 5 (released ones are still picked). */
export const refArb: fc.Arbitrary<Ref> = fc.record({ k: fc.nat({ max: 15 }), live: fc.nat({ max: 4 }).map((n) => n !== 0) });

/**
 * The arbitraries of the shared ops, weighted by `weights` (each property balances its programs differently), for
 * `fc.oneof` together with the property's own ops; always in the same order, so a seed keeps giving the same programs.
 * `op.source` indexes `sources`, the first (meant to define every kernel) twice as often as each other one.
 */
export function opArbs(weights: Readonly<Record<ToyOp['op'], number>>, sources: readonly string[]): fc.WeightedArbitrary<ToyOp>[] {
  return [
    { weight: weights.context, arbitrary: fc.record({ op: fc.constant('context' as const), devs: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
    { weight: weights.queue, arbitrary: fc.record({ op: fc.constant('queue' as const), ctx: refArb, dev: fc.constantFrom(0 as const, 1 as const) }) },
    { weight: weights.buffer, arbitrary: fc.record({ op: fc.constant('buffer' as const), ctx: refArb, size: fc.constantFrom(16, 64, 64, 0), host: fc.boolean(), seed: fc.nat({ max: 255 }) }) },
    { weight: weights.program, arbitrary: fc.record({ op: fc.constant('program' as const), ctx: refArb, source: fc.constantFrom(0, ...sources.keys()) }) },
    { weight: weights.build, arbitrary: fc.record({ op: fc.constant('build' as const), prog: refArb, options: fc.constantFrom(0, 0, 1, 2) }) },
    { weight: weights.kernel, arbitrary: fc.record({ op: fc.constant('kernel' as const), prog: refArb, name: fc.constantFrom(0, 1, 2, 3, 0, 2, 3, 4) }) },
    {
      weight: weights.setArg,
      arbitrary: fc.record({
        op: fc.constant('setArg' as const), kernel: refArb, index: fc.constantFrom(0, 1, 2, 0, 1, 3),
        match: fc.nat({ max: 7 }).map((n) => n !== 0), buffer: fc.nat({ max: 15 }), float: fc.nat({ max: FLOATS.length - 1 }),
      }),
    },
    { weight: weights.retain, arbitrary: fc.record({ op: fc.constant('retain' as const), target: refArb }) },
    { weight: weights.release, arbitrary: fc.record({ op: fc.constant('release' as const), target: refArb }) },
    {
      weight: weights.write,
      arbitrary: fc.record({ op: fc.constant('write' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16, 16), seed: fc.nat({ max: 255 }) }),
    },
    { weight: weights.read, arbitrary: fc.record({ op: fc.constant('read' as const), queue: refArb, buffer: fc.nat({ max: 15 }), offset: fc.constantFrom(0, 0, 4, 12), size: fc.constantFrom(4, 16) }) },
    { weight: weights.launch, arbitrary: fc.record({ op: fc.constant('launch' as const), queue: refArb, kernel: refArb, n: fc.constantFrom(1, 4, 4, 16) }) },
    { weight: weights.info, arbitrary: fc.record({ op: fc.constant('info' as const), kind: fc.constantFrom('context' as const, 'buffer' as const, 'program' as const), target: refArb, param: fc.nat({ max: 2 }) }) },
  ];
}
