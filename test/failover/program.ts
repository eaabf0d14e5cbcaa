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
import type { AnyApi, Call, SlotInfo, ToyOp, World } from '../helpers/toyacc-ops.js';
import { DEVICES_CALL, applicable, describe, deviceSlots, invoke, learn, observeResult, opArbs, toCall } from '../helpers/toyacc-ops.js';

export type { Call, Kind, Ref, SlotInfo, World } from '../helpers/toyacc-ops.js';

export type Mode = 'return' | 'throw';

/** One step of a program: the shared ops, no others. */
export type Op = ToyOp;

/**
 * This property's program sources, by index (unlike replay's: 'fill scale' rather than 'fill; scale', and no empty
 * source); kept as they were so that a seed keeps giving the same programs.
 */
const SOURCES = ['fill axpy scale checksum', 'fill scale', 'checksum axpy', 'fill bogus'];

/** What a call gives, equal across worlds (no handle values); creates push the new handle into the world's slots. */
export async function observe(world: World, call: Call): Promise<Record<string, unknown>> {
  const got = await invoke(world, call);
  let result: CallResult;
  if ('error' in got) {
    // `throw` mode: a failure status of a waiting call, or the invalid-handle status of a call the worker refused
    // (ERR_AVA_API_STATUS, HandleError: both carry the status in their details). The model never throws.
    const { error } = got;
    const status = AvaError.isAvaError(error) ? (error.details as { status?: unknown }).status : undefined;
    if (typeof status !== 'number') return { threw: AvaError.isAvaError(error) ? error.code : (error as Error).name, message: (error as Error).message };
    result = { ret: status, outs: {} };
  } else {
    result = got.result;
  }
  if (call.observe.as === 'devices') {
    // The plan's first call: its devices take slots 0 and 1.
    const devices = (result.outs.devices as unknown[] | undefined) ?? [];
    world.slots.push(...devices);
    return { ret: result.ret, count: result.outs.count, n: devices.length };
  }
  // An errcode_ret left out of the outs (as in a result rebuilt above from a thrown status) is observed as success.
  return observeResult(world, call.observe, got.args, result, TQ.SUCCESS);
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

/**
 * Runs `ops` on a fresh model: call 0 is tq_get_devices (the devices in slots 0 and 1), then every op whose
 * precondition holds (in `throw` mode, without the posted calls that fail on the model).
 */
export async function plan(ops: readonly Op[], mode: Mode): Promise<Planned> {
  const toy = new ToyaccModel();
  const world: World = { api: toy as unknown as AnyApi, slots: [] };
  const steps: Step[] = [{ call: DEVICES_CALL, expected: await observe(world, DEVICES_CALL), posted: false, text: describe(DEVICES_CALL, { shortBytes: true }) }];
  const known = deviceSlots();
  for (const op of ops) {
    if (!applicable(op, known)) continue;
    const call = toCall(op, known, SOURCES);
    const expected = await observe(world, call);
    const failed = call.observe.as === 'create' ? !expected.created : expected.ret !== TQ.SUCCESS;
    const isPosted = posted(call.fn, mode);
    if (isPosted && failed) {
      // Left out: the model changed nothing (a failed create issued no handle; drop the null slot it pushed).
      if (call.observe.as === 'create') world.slots.pop();
      continue;
    }
    steps.push({ call, expected, posted: isPosted, text: describe(call, { shortBytes: true }) });
    learn(known, call, expected);
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

/** Every op, weighted towards programs that build state and use it. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(...opArbs({
  context: 1, queue: 2, buffer: 4, program: 1, build: 2, kernel: 3, setArg: 7, retain: 2, release: 4, write: 6, read: 4, launch: 7, info: 1,
}, SOURCES));

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
