/**
 * toyacc natively (openNativeApi), through the guestlib on the local channel, and on the TypeScript model
 * (fixtures/toyacc/model.ts) give the same results: the demo workload, and random programs (fast-check).
 *
 * node --import tsx test/guest/toyacc-equivalence.test.ts
 */
import fc from 'fast-check';
import { test as uvuTest } from 'uvu';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { ToyaccModel } from '../../fixtures/toyacc/model.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { LocalChannel } from '../../src/transport/local.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import { Worker } from '../../src/worker/worker.js';
import type { AnyApi, CallShape, Kind, World as ToyWorld } from '../helpers/toyacc-ops.js';
import { KERNELS, describe, f32, invoke } from '../helpers/toyacc-ops.js';

const worker = await Worker.open({ spec: toyaccSpec });
const native = await openNativeApi(toyaccSpec);
const nativeReturn = await openNativeApi(toyaccSpec, { statusErrors: 'return' });
const modelApi = (): AnyApi => new ToyaccModel() as unknown as AnyApi;
const liveObjects = (): number => worker.library.get('tq_debug_live_objects')() as number;

// ------------------------------------------------------------------------------------------------ the demo

const DEMO_CASES = [
  { elements: 1, rounds: 0 },
  { elements: 1, rounds: 5 },
  { elements: 17, rounds: 1 },
  { elements: 17, rounds: 5 },
  { elements: 4096, rounds: 0 },
  { elements: 4096, rounds: 1 },
  { elements: 4096, rounds: 5 },
];

test('demo: native and guestlib give deep-equal results', async () => {
  for (const options of DEMO_CASES) {
    const expected = await runToyaccDemo(native.api, options);
    assert.equal(expected.devices, ['toyacc-0', 'toyacc-1']);
    assert.is(expected.elements, options.elements);
    const lib = await openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec, worker }) });
    try {
      assert.equal(await runToyaccDemo(lib.api, options), expected, JSON.stringify(options));
    } finally {
      await lib.close();
    }
  }
});

test('demo: results differ with the rounds (the comparison can fail)', async () => {
  const a = await runToyaccDemo(native.api, { elements: 17, rounds: 1 });
  const b = await runToyaccDemo(native.api, { elements: 17, rounds: 2 });
  assert.is.not(a.checksum, b.checksum);
});

test('demo: the model gives deep-equal results', async () => {
  for (const options of DEMO_CASES) {
    const expected = await runToyaccDemo(native.api, options);
    assert.equal(await runToyaccDemo(modelApi() as ApiObject, options), expected, JSON.stringify(options));
  }
});

// ------------------------------------------------------------------------------------------------ worlds

/** A world's handles of created objects by slot (null where the create failed), named for the reports. */
interface World extends ToyWorld {
  readonly name: string;
}

interface Worlds {
  readonly native: World;
  readonly guest: World;
  readonly model: World;
  readonly lib: Guestlib;
}

async function openWorlds(): Promise<Worlds> {
  const lib = await openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec, worker }), statusErrors: 'return' });
  return {
    native: { name: 'native', api: nativeReturn.api as AnyApi, slots: [] },
    guest: { name: 'guestlib', api: lib.api as AnyApi, slots: [] },
    model: { name: 'model', api: modelApi(), slots: [] },
    lib,
  };
}

/**
 * One call, world-independent, with how to observe its result: unlike the other toyacc properties' calls, creates
 * record only the kind, and info queries say whether their value is a handle (whose bytes differ across worlds).
 */
interface Call extends CallShape {
  readonly observe:
    | { readonly as: 'create'; readonly kind: Kind }
    | { readonly as: 'status' }
    | { readonly as: 'read'; readonly arg: number }
    | { readonly as: 'info'; readonly arg: number; readonly handleValued: boolean }
    | { readonly as: 'devices' };
  /** For retain/release: the slot and kind whose reference count changes on success. */
  readonly refs?: { readonly slot: number; readonly kind: Kind; readonly delta: 1 | -1 };
}

/** What a call gives, in a form equal across worlds (no handle values). */
async function run(world: World, call: Call): Promise<Record<string, unknown>> {
  if (typeof world.api[call.fn] !== 'function') throw new Error(`${world.name} has no ${call.fn}`);
  const got = await invoke(world, call);
  if ('error' in got) {
    const e = got.error as AvaError;
    return { threw: e.code ?? e.name, message: e.message };
  }
  const { args } = got;
  const { ret, outs } = got.result;
  switch (call.observe.as) {
    case 'create':
      world.slots.push(ret ?? null);
      return { created: ret !== null && ret !== undefined, errcode: outs.errcode_ret };
    case 'status':
      return { ret };
    case 'read':
      return { ret, bytes: [...(args[call.observe.arg] as Uint8Array)] };
    case 'info':
      return {
        ret,
        size_ret: ret === TQ.SUCCESS ? outs.size_ret : undefined,
        bytes: ret === TQ.SUCCESS && !call.observe.handleValued && args[call.observe.arg] !== null ? [...(args[call.observe.arg] as Uint8Array)] : undefined,
      };
    case 'devices':
      return { ret, count: outs.count, n: Array.isArray(outs.devices) ? outs.devices.length : 0 };
  }
}

// ------------------------------------------------------------------------------------------------ deterministic cases

/**
 * After {@link seedDevices} (devices in slots 0 and 1): context 2 (both devices); queue 3; buffer 4 (64 bytes);
 * program 5 (built); kernels 6 (fill) and 7 (checksum), with their arguments set.
 */
const PREAMBLE: Call[] = [
  { fn: 'tq_create_context', args: [{ value: 2 }, { slots: [0, 1] }], observe: { as: 'create', kind: 'context' } },
  { fn: 'tq_create_queue', args: [{ slot: 2 }, { slot: 1 }], observe: { as: 'create', kind: 'queue' } },
  { fn: 'tq_create_buffer', args: [{ slot: 2 }, { value: 0 }, { value: 64 }, { value: null }], observe: { as: 'create', kind: 'buffer' } },
  { fn: 'tq_create_program', args: [{ slot: 2 }, { value: 'fill axpy scale checksum' }], observe: { as: 'create', kind: 'program' } },
  { fn: 'tq_build_program', args: [{ slot: 5 }, { value: null }], observe: { as: 'status' } },
  { fn: 'tq_create_kernel', args: [{ slot: 5 }, { value: 'fill' }], observe: { as: 'create', kind: 'kernel' } },
  { fn: 'tq_set_kernel_arg', args: [{ slot: 6 }, { value: 0 }, { value: 8 }, { slot: 4 }], observe: { as: 'status' } },
  { fn: 'tq_set_kernel_arg', args: [{ slot: 6 }, { value: 1 }, { value: 4 }, { bytes: f32(1.5) }], observe: { as: 'status' } },
  { fn: 'tq_create_kernel', args: [{ slot: 5 }, { value: 'checksum' }], observe: { as: 'create', kind: 'kernel' } },
  { fn: 'tq_set_kernel_arg', args: [{ slot: 7 }, { value: 0 }, { value: 8 }, { slot: 4 }], observe: { as: 'status' } },
  { fn: 'tq_set_kernel_arg', args: [{ slot: 7 }, { value: 1 }, { value: 8 }, { slot: 4 }], observe: { as: 'status' } },
];

/** Fetches the two devices into slots 0 and 1 of a world. */
async function seedDevices(world: World): Promise<void> {
  const { outs } = await world.api.tq_get_devices!(2, true);
  const devices = outs.devices as unknown[];
  world.slots.length = 0;
  world.slots.push(devices[0], devices[1]);
}

async function cleanUpNative(world: World): Promise<void> {
  // natively nothing releases what a program left: give back every reference so the library does not fill up
  for (const h of world.slots.slice(2)) {
    if (h === null || h === undefined) continue;
    for (let n = 0; n < 64; n++) {
      const kinds = ['kernel', 'program', 'buffer', 'queue', 'context'];
      let released = false;
      for (const kind of kinds) {
        const r = await world.api[`tq_release_${kind}`]!(h);
        if (r.ret === TQ.SUCCESS) { released = true; break; }
      }
      if (!released) break;
    }
  }
}

/** Runs calls after seeding devices; observations by world. */
async function compare(calls: Call[]): Promise<Record<string, Record<string, unknown>[]>> {
  const worlds = await openWorlds();
  const out: Record<string, Record<string, unknown>[]> = {};
  try {
    for (const w of [worlds.native, worlds.guest, worlds.model]) {
      await seedDevices(w);
      out[w.name] = [];
      for (const call of calls) out[w.name]!.push(await run(w, call));
    }
  } finally {
    await cleanUpNative(worlds.native);
    await worlds.lib.close();
  }
  return out;
}

function assertSame(obs: Record<string, Record<string, unknown>[]>, what: string): void {
  // one line per call, so that a difference reads as the calls that differ
  const lines = (name: string): string[] => obs[name]!.map((o, i) => `#${i} ${JSON.stringify(o)}`);
  assert.equal(lines('guestlib'), lines('model'), `${what}: guestlib vs model`);
  assert.equal(lines('native'), lines('model'), `${what}: native vs model`);
}

test('edge: the preamble itself succeeds everywhere', async () => {
  const obs = await compare(PREAMBLE);
  assertSame(obs, 'preamble');
  assert.equal(obs.model!.map((o) => o.created ?? o.ret), [true, true, true, true, 0, true, 0, 0, true, 0, 0]);
});

test('edge: a released buffer as a kernel argument value is TQ_INVALID_ARG_VALUE', async () => {
  const obs = await compare([
    ...PREAMBLE,
    { fn: 'tq_release_buffer', args: [{ slot: 4 }], observe: { as: 'status' } },
    { fn: 'tq_set_kernel_arg', args: [{ slot: 6 }, { value: 0 }, { value: 8 }, { slot: 4 }], observe: { as: 'status' } },
  ]);
  assert.equal(obs.model!.at(-1), { ret: TQ.INVALID_ARG_VALUE });
  assertSame(obs, 'released buffer as argument value');
});

test('edge (documented divergence): a released buffer with a bad index is TQ_INVALID_ARG_VALUE remoted, TQ_INVALID_ARG_INDEX natively', async () => {
  // The worker never hands a released object to the library (it may be freed memory), so it answers with the
  // argument's invalid status before the library can check the index. docs/ARCHITECTURE.md says so.
  const obs = await compare([
    ...PREAMBLE,
    { fn: 'tq_release_buffer', args: [{ slot: 4 }], observe: { as: 'status' } },
    { fn: 'tq_set_kernel_arg', args: [{ slot: 6 }, { value: 7 }, { value: 8 }, { slot: 4 }], observe: { as: 'status' } },
  ]);
  assert.equal(obs.model!.at(-1), { ret: TQ.INVALID_ARG_INDEX });
  assert.equal(obs.native!.at(-1), { ret: TQ.INVALID_ARG_INDEX });
  assert.equal(obs.guestlib!.at(-1), { ret: TQ.INVALID_ARG_VALUE });
});

test('edge: a handle of another kind as a kernel argument value is TQ_INVALID_ARG_VALUE', async () => {
  const obs = await compare([
    ...PREAMBLE,
    { fn: 'tq_set_kernel_arg', args: [{ slot: 6 }, { value: 0 }, { value: 8 }, { slot: 3 }], observe: { as: 'status' } },
  ]);
  assert.equal(obs.model!.at(-1), { ret: TQ.INVALID_ARG_VALUE });
  assertSame(obs, 'queue as argument value');
});

test('edge: a failed read leaves the destination as it was (toyacc writes nothing on failure)', async () => {
  const obs = await compare([
    ...PREAMBLE,
    // offset 60 + 16 > 64: TQ_OUT_OF_RANGE; the caller's bytes must stay 0xAB
    { fn: 'tq_enqueue_read', args: [{ slot: 3 }, { slot: 4 }, { value: 60 }, { value: 16 }, { bytes: new Array(16).fill(0xab) }], observe: { as: 'read', arg: 4 } },
  ]);
  assert.equal(obs.model!.at(-1), { ret: TQ.OUT_OF_RANGE, bytes: new Array(16).fill(0xab) });
  assertSame(obs, 'failed read');
});

test('edge: an info query writes exactly the parameter\'s bytes', async () => {
  const value = new Array(16).fill(0xee);
  const obs = await compare([
    { fn: 'tq_get_device_info', args: [{ slot: 1 }, { value: TQ.DEVICE_UNITS }, { value: 16 }, { bytes: value }], observe: { as: 'info', arg: 3, handleValued: false } },
  ]);
  assert.equal(obs.model![0], { ret: 0, size_ret: 4, bytes: [8, 0, 0, 0, ...new Array(12).fill(0xee)] });
  assertSame(obs, 'info value bytes past the parameter');
});

test('edge: a zero-length info value is not a size probe (value != NULL and size 0 < 4)', async () => {
  const obs = await compare([
    { fn: 'tq_get_device_info', args: [{ slot: 0 }, { value: TQ.DEVICE_UNITS }, { value: 0 }, { zeros: 0 }], observe: { as: 'info', arg: 3, handleValued: false } },
  ]);
  assert.equal(obs.model![0]!.ret, TQ.INVALID_VALUE);
  assertSame(obs, 'zero-length info value');
});

// ------------------------------------------------------------------------------------------------ random programs

// This property's own vocabulary, wider than test/helpers/toyacc-ops.ts's on purpose: device info and handle-valued
// parameters, unknown parameters, an empty option, comments and repeated names in sources, 0 and NaN floats.
const INFO: Record<'device' | 'context' | 'buffer' | 'program', readonly (readonly [number, boolean])[]> = {
  device: [[TQ.DEVICE_NAME, false], [TQ.DEVICE_UNITS, false], [TQ.DEVICE_MEMORY, false], [TQ.DEVICE_INDEX, false], [0x19, false]],
  context: [[TQ.CONTEXT_DEVICES, true], [TQ.CONTEXT_REFCOUNT, false], [0x2f, false]],
  buffer: [[TQ.BUFFER_SIZE, false], [TQ.BUFFER_CONTEXT, true], [TQ.BUFFER_REFCOUNT, false], [0x3f, false]],
  program: [[TQ.PROGRAM_BUILD_LOG, false], [TQ.PROGRAM_KERNEL_NAMES, false], [TQ.PROGRAM_CONTEXT, true], [TQ.PROGRAM_REFCOUNT, false], [0x4f, false]],
};
const SOURCES = ['fill axpy scale checksum', 'fill; scale', 'checksum\n# axpy\n  axpy', 'fill bogus; bogus2', '', '# nothing', 'axpy axpy'];
const OPTIONS = [null, '', '-O2', '-O3'];
const FLOATS = [1.5, -2, 0.5, 0, Number.NaN];
const LIFETIME_KINDS: readonly Kind[] = ['context', 'queue', 'buffer', 'program', 'kernel'];

/** A reference to a slot: `k` picks among the slots of the wanted kind unless `any`, then among all slots. */
const refArb = fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 4 })).map(([k, a]) => ({ k, any: a === 0 }));

/** The kind of a retain/release: mostly (null) the target's own kind, sometimes a fixed one (often a wrong kind). */
const kindOrOwn = fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...LIFETIME_KINDS) });

const opArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('context' as const), devs: fc.array(refArb, { maxLength: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('queue' as const), ctx: refArb, dev: refArb }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('buffer' as const), ctx: refArb, flags: fc.constantFrom(0, 0, 1, 1, 2), size: fc.constantFrom(0, 4, 16, 64, 64), host: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('program' as const), ctx: refArb, source: fc.nat({ max: SOURCES.length - 1 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('build' as const), prog: refArb, options: fc.nat({ max: OPTIONS.length - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('kernel' as const), prog: refArb, name: fc.nat({ max: KERNELS.length - 1 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('retain' as const), kind: kindOrOwn, target: refArb }) },
  { weight: 10, arbitrary: fc.record({ op: fc.constant('release' as const), kind: kindOrOwn, target: refArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('setArg' as const), kernel: refArb, index: fc.constantFrom(0, 1, 2, 3),
      value: fc.constantFrom('buffer', 'buffer', 'float', 'float', 'null'), buffer: fc.nat({ max: 255 }),
      float: fc.nat({ max: FLOATS.length - 1 }), size: fc.nat({ max: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('write' as const), queue: refArb, buffer: refArb, offset: fc.constantFrom(0, 0, 4, 12, 60, 64, 65),
      size: fc.constantFrom(0, 4, 8, 16), seed: fc.nat({ max: 255 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('read' as const), queue: refArb, buffer: refArb, offset: fc.constantFrom(0, 0, 4, 12, 60, 64, 65), size: fc.constantFrom(0, 4, 8, 16),
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('launch' as const), queue: refArb, kernel: refArb, n: fc.constantFrom(0, 1, 4, 16, 17) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('finish' as const), queue: refArb }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('info' as const), kind: fc.constantFrom('device' as const, 'context' as const, 'buffer' as const, 'program' as const),
      target: refArb, param: fc.nat({ max: 4 }), size: fc.constantFrom(1, 4, 8, 16, 64), probe: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('devices' as const), capacity: fc.nat({ max: 3 }), want: fc.boolean() }) },
);

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** What the test knows of each slot (the same in every world while they agree). */
interface SlotInfo {
  kind: Kind;
  refs: number;
}

/** Turns an op into a call, picking slots by what the test knows of them. */
function toCall(op: Op, known: (SlotInfo | null)[]): Call {
  const pick = (r: { k: number; any: boolean }, kind: Kind): number => {
    const all = known.flatMap((s, i) => (s === null ? [] : [i]));
    const ofKind = all.filter((i) => known[i]!.kind === kind);
    const from = r.any || ofKind.length === 0 ? all : ofKind;
    return from[r.k % from.length]!;
  };
  const create = (kind: Kind): Call['observe'] => ({ as: 'create', kind });
  switch (op.op) {
    case 'context': {
      const devs = op.devs.map((r) => pick(r, 'device'));
      return { fn: 'tq_create_context', args: [{ value: devs.length }, { slots: devs }], observe: create('context') };
    }
    case 'queue':
      return { fn: 'tq_create_queue', args: [{ slot: pick(op.ctx, 'context') }, { slot: pick(op.dev, 'device') }], observe: create('queue') };
    case 'buffer':
      return {
        fn: 'tq_create_buffer',
        args: [{ slot: pick(op.ctx, 'context') }, { value: op.flags }, { value: op.size }, op.host ? { bytes: Array.from({ length: op.size }, (_, i) => (i * 7 + 3) & 0xff) } : { value: null }],
        observe: create('buffer'),
      };
    case 'program':
      return { fn: 'tq_create_program', args: [{ slot: pick(op.ctx, 'context') }, { value: SOURCES[op.source] }], observe: create('program') };
    case 'build':
      return { fn: 'tq_build_program', args: [{ slot: pick(op.prog, 'program') }, { value: OPTIONS[op.options] }], observe: { as: 'status' } };
    case 'kernel':
      return { fn: 'tq_create_kernel', args: [{ slot: pick(op.prog, 'program') }, { value: KERNELS[op.name] }], observe: create('kernel') };
    case 'retain':
    case 'release': {
      let slot: number;
      let kind: Kind;
      if (op.kind === null) {
        // an object of the program (devices have no lifetime functions), released or not
        const objects = known.flatMap((s, i) => (s !== null && s.kind !== 'device' ? [i] : []));
        slot = objects[op.target.k % objects.length]!;
        kind = known[slot]!.kind;
      } else {
        slot = pick(op.target, op.kind);
        kind = op.kind;
      }
      return {
        fn: `tq_${op.op}_${kind}`, args: [{ slot }], observe: { as: 'status' },
        refs: { slot, kind, delta: op.op === 'retain' ? 1 : -1 },
      };
    }
    case 'setArg': {
      const kernel = pick(op.kernel, 'kernel');
      // Only live buffers as handle values: a released or wrong-kind handle value is a known divergence, tested above.
      const liveBuffers = known.flatMap((s, i) => (s !== null && s.kind === 'buffer' && s.refs > 0 ? [i] : []));
      const kind = op.value === 'buffer' && liveBuffers.length === 0 ? 'float' : op.value;
      if (kind === 'buffer') {
        // 8 is right for a buffer slot; 16 and 0 are wrong for every slot, so the library never reads the value
        const size = [8, 8, 16, 0][op.size]!;
        return { fn: 'tq_set_kernel_arg', args: [{ slot: kernel }, { value: op.index }, { value: size }, { slot: liveBuffers[op.buffer % liveBuffers.length]! }], observe: { as: 'status' } };
      }
      if (kind === 'float') {
        // the value holds 4 bytes: sizes above 4 would make the library read past them
        const size = [4, 4, 2, 1][op.size]!;
        return { fn: 'tq_set_kernel_arg', args: [{ slot: kernel }, { value: op.index }, { value: size }, { bytes: f32(FLOATS[op.float]!) }], observe: { as: 'status' } };
      }
      return { fn: 'tq_set_kernel_arg', args: [{ slot: kernel }, { value: op.index }, { value: [0, 4, 8, 8][op.size]! }, { value: null }], observe: { as: 'status' } };
    }
    case 'write':
      return {
        fn: 'tq_enqueue_write',
        args: [{ slot: pick(op.queue, 'queue') }, { slot: pick(op.buffer, 'buffer') }, { value: op.offset }, { value: op.size }, { bytes: Array.from({ length: op.size }, (_, i) => (op.seed + 13 * i) & 0xff) }],
        observe: { as: 'status' },
      };
    case 'read':
      return {
        fn: 'tq_enqueue_read',
        args: [{ slot: pick(op.queue, 'queue') }, { slot: pick(op.buffer, 'buffer') }, { value: op.offset }, { value: op.size }, { zeros: op.size }],
        observe: { as: 'read', arg: 4 },
      };
    case 'launch':
      return { fn: 'tq_enqueue_kernel', args: [{ slot: pick(op.queue, 'queue') }, { slot: pick(op.kernel, 'kernel') }, { value: op.n }], observe: { as: 'status' } };
    case 'finish':
      return { fn: 'tq_finish', args: [{ slot: pick(op.queue, 'queue') }], observe: { as: 'status' } };
    case 'info': {
      const params = INFO[op.kind];
      const [param, handleValued] = params[op.param % params.length]!;
      return {
        fn: `tq_get_${op.kind}_info`,
        args: [{ slot: pick(op.target, op.kind) }, { value: param }, { value: op.probe ? 0 : op.size }, op.probe ? { value: null } : { zeros: op.size }],
        observe: { as: 'info', arg: 3, handleValued },
      };
    }
    case 'devices':
      return { fn: 'tq_get_devices', args: [{ value: op.capacity }, { value: op.want ? true : null }], observe: { as: 'devices' } };
  }
}

/** Runs one random program on the three worlds, comparing after every call. */
async function runProgram(ops: readonly Op[]): Promise<void> {
  const worlds = await openWorlds();
  const all = [worlds.native, worlds.guest, worlds.model];
  const known: (SlotInfo | null)[] = [{ kind: 'device', refs: 1 }, { kind: 'device', refs: 1 }];
  const trace: string[] = [];
  try {
    for (const w of all) await seedDevices(w);
    const calls: (Call | Op)[] = [...PREAMBLE, ...ops];
    for (const item of calls) {
      const call = 'fn' in item ? item : toCall(item, known);
      trace.push(describe(call));
      const [n, g, m] = [await run(worlds.native, call), await run(worlds.guest, call), await run(worlds.model, call)];
      if (JSON.stringify(g) !== JSON.stringify(m) || JSON.stringify(n) !== JSON.stringify(m)) {
        throw new Error(`divergence at call ${trace.length}:\n  ${trace.join('\n  ')}\n native:   ${JSON.stringify(n)}\n guestlib: ${JSON.stringify(g)}\n model:    ${JSON.stringify(m)}`);
      }
      if (call.observe.as === 'create') known.push(m.created ? { kind: call.observe.kind, refs: 1 } : null);
      if (call.refs && m.ret === TQ.SUCCESS) known[call.refs.slot]!.refs += call.refs.delta;
    }
  } finally {
    await cleanUpNative(worlds.native);
    await worlds.lib.close();
  }
}

test('property: random programs give the same results natively, through the guestlib and on the model', async () => {
  const before = liveObjects();
  await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 30, size: 'max' }), async (ops) => { await runProgram(ops); }), {
    numRuns: 40,
    seed: Number(process.env.FC_SEED ?? 20251125),
    includeErrorInReport: true,
    interruptAfterTimeLimit: 15_000,
  });
  assert.is(liveObjects(), before, 'every run gave back what it made');
});

test('property: the generator reaches the interesting outcomes', async () => {
  // a sanity check of the generator itself: over a fixed sample, creates succeed and fail, handles get released
  // and used afterwards, reads return data.
  const samples = fc.sample(fc.array(opArb, { minLength: 20, maxLength: 30 }), { numRuns: 20, seed: 7 });
  const seen = new Set<string>();
  for (const ops of samples) {
    const model: World = { name: 'model', api: modelApi(), slots: [] };
    {
      await seedDevices(model);
      const known: (SlotInfo | null)[] = [{ kind: 'device', refs: 1 }, { kind: 'device', refs: 1 }];
      for (const item of [...PREAMBLE, ...ops]) {
        const call = 'fn' in item ? item : toCall(item, known);
        const m = await run(model, call);
        if (call.observe.as === 'create') {
          known.push(m.created ? { kind: call.observe.kind, refs: 1 } : null);
          seen.add(m.created ? 'create-ok' : 'create-failed');
        }
        if (call.refs && m.ret === TQ.SUCCESS) known[call.refs.slot]!.refs += call.refs.delta;
        if (call.refs && m.ret === TQ.SUCCESS && call.refs.delta < 0 && known[call.refs.slot]!.refs === 0) seen.add('released');
        if (m.ret === TQ.INVALID_BUFFER || m.ret === TQ.INVALID_KERNEL || m.ret === TQ.INVALID_QUEUE) seen.add('invalid-handle');
        if (call.observe.as === 'read' && m.ret === TQ.SUCCESS && (m.bytes as number[]).some((b) => b !== 0)) seen.add('read-data');
        if (call.fn === 'tq_enqueue_kernel' && m.ret === TQ.SUCCESS) seen.add('launched');
        if (call.fn === 'tq_set_kernel_arg' && m.ret === TQ.INVALID_ARG_VALUE) seen.add('bad-arg');
      }
    }
  }
  for (const outcome of ['create-ok', 'create-failed', 'released', 'invalid-handle', 'read-data', 'launched', 'bad-arg']) {
    assert.ok(seen.has(outcome), `the generator never reached ${outcome}`);
  }
});

uvuTest.after(async () => {
  await native.close();
  await nativeReturn.close();
  await worker.close();
});

uvuTest.run();
