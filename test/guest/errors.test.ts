/**
 * Errors as a guestlib application sees them (throw mode): bad handles, wrong JavaScript types (caught before
 * anything is sent), API failure statuses, unsupported functions, and errors rebuilt from the wire.
 *
 * node --import tsx test/guest/errors.test.ts
 */
import { test as uvuTest } from 'uvu';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { buildToyacc } from '../../fixtures/toyacc/build.js';
import { TQ, TQ_STATUS_NAMES } from '../../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import {
  ApiStatusError, ArgumentTypeError, AvaError, BadCallError, fromWireError, HandleError, toWireError, UnsupportedError,
} from '../../src/errors.js';
import type { WireError } from '../../src/errors.js';
import { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import { arg, defineSpec, fn, ret, unsupported } from '../../src/spec/index.js';
import { LocalChannel } from '../../src/transport/local.js';
import { Worker } from '../../src/worker/worker.js';


/** The error a promise rejects with; fails when it resolves. */
async function rejection(p: Promise<unknown> | (() => Promise<unknown>), what = 'call'): Promise<AvaError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `${what}: not an AvaError: ${String(error)}`);
    return error as AvaError;
  }
  throw new Error(`${what}: resolved, a rejection was expected`);
}

const worker = await Worker.open({ spec: toyaccSpec });
const lib = await openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec, worker }) });
const api = lib.api;
const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
const context = (await api.tq_create_context!(1, [devices[0]])).ret as Handle;
const queue = (await api.tq_create_queue!(context, devices[0])).ret as Handle;
const buffer = (await api.tq_create_buffer!(context, 0, 16, null)).ret as Handle;
const program = (await api.tq_create_program!(context, 'fill axpy')).ret as Handle;
await api.tq_build_program!(program, null);
const kernel = (await api.tq_create_kernel!(program, 'fill')).ret as Handle;

// ------------------------------------------------------------------------------------------------ handles

test('a forged handle is ERR_AVA_UNKNOWN_HANDLE, with the kind\'s invalid status', async () => {
  const forged = new Handle('buffer', 424242);
  const e = await rejection(api.tq_get_buffer_info!(forged, TQ.BUFFER_SIZE, 8, new Uint8Array(8)));
  assert.is(e.code, 'ERR_AVA_UNKNOWN_HANDLE');
  assert.ok(e instanceof HandleError, `rebuilt as ${e.name}`);
  assert.is((e as HandleError).status, TQ.INVALID_BUFFER);
  // a forged id of a kind that exists in the session, used as another kind
  const e2 = await rejection(api.tq_finish!(new Handle('queue', 999_999)));
  assert.is(e2.code, 'ERR_AVA_UNKNOWN_HANDLE');
});

test('a released buffer is ERR_AVA_STALE_HANDLE', async () => {
  const b = (await api.tq_create_buffer!(context, 0, 8, null)).ret as Handle;
  await api.tq_release_buffer!(b);
  const e = await rejection(api.tq_enqueue_write!(queue, b, 0, 4, new Uint8Array(4)));
  assert.is(e.code, 'ERR_AVA_STALE_HANDLE');
  assert.is((e as HandleError).status, TQ.INVALID_BUFFER);
  assert.is((await rejection(api.tq_release_buffer!(b))).code, 'ERR_AVA_STALE_HANDLE', 'a second release');
});

test('a queue passed where a buffer is expected is ERR_AVA_HANDLE_KIND', async () => {
  const e = await rejection(api.tq_get_buffer_info!(queue, TQ.BUFFER_SIZE, 8, new Uint8Array(8)));
  assert.is(e.code, 'ERR_AVA_HANDLE_KIND');
  assert.is(e.details.status, TQ.INVALID_BUFFER);
  const e2 = await rejection(api.tq_enqueue_read!(buffer, buffer, 0, 4, new Uint8Array(4)));
  assert.is(e2.code, 'ERR_AVA_HANDLE_KIND');
  assert.is(e2.details.status, TQ.INVALID_QUEUE);
});

// ------------------------------------------------------------------------------------------------ argument types

const WRONG: [string, () => Promise<unknown>][] = [
  ['a string for a scalar', () => api.tq_create_buffer!(context, '0', 16, null)],
  ['a string for a size', () => api.tq_enqueue_kernel!(queue, kernel, '16')],
  ['a number for a handle', () => api.tq_finish!(5)],
  ['a look-alike object for a handle', () => api.tq_finish!({ kind: 'queue', id: queue.id })],
  ['null for a non-nullable handle', () => api.tq_finish!(null)],
  ['a plain array for bytes', () => api.tq_enqueue_write!(queue, buffer, 0, 4, [1, 2, 3, 4])],
  ['a string for bytes', () => api.tq_enqueue_write!(queue, buffer, 0, 4, 'abcd')],
  ['a too-short source array', () => api.tq_enqueue_write!(queue, buffer, 0, 16, new Uint8Array(8))],
  ['a too-short destination array', () => api.tq_enqueue_read!(queue, buffer, 0, 16, new Uint8Array(8))],
  ['a too-short destination of another type', () => api.tq_enqueue_read!(queue, buffer, 0, 16, new Float32Array(3))],
  ['a too-short info value', () => api.tq_get_device_info!(devices[0], TQ.DEVICE_NAME, 32, new Uint8Array(8))],
  ['too few arguments', () => api.tq_finish!()],
  ['too many arguments', () => api.tq_finish!(queue, queue)],
  ['pure out-arguments passed in', () => api.tq_create_buffer!(context, 0, 16, null, new Int32Array(1))],
  ['a float for an integer', () => api.tq_create_buffer!(context, 0, 1.5, null)],
  ['a float for a uint32 index', () => api.tq_set_kernel_arg!(kernel, 0.5, 8, buffer)],
  ['NaN for an integer', () => api.tq_enqueue_kernel!(queue, kernel, Number.NaN)],
  ['an out-of-range uint32 (2^32)', () => api.tq_create_buffer!(context, 2 ** 32, 16, null)],
  ['an out-of-range uint32 (-1)', () => api.tq_create_buffer!(context, -1, 16, null)],
  ['a negative size_t', () => api.tq_create_buffer!(context, 0, -16, null)],
  ['a BigInt for a uint32', () => api.tq_create_buffer!(context, 1n, 16, new Uint8Array(16))],
  ['a number for a string', () => api.tq_create_program!(context, 42)],
  ['null for a non-nullable string', () => api.tq_create_program!(context, null)],
  ['a single handle for a handle array', () => api.tq_create_context!(1, devices[0])],
  ['a handle array shorter than its count', () => api.tq_create_context!(2, [devices[0]])],
  ['a string for a kernel argument value', () => api.tq_set_kernel_arg!(kernel, 1, 4, 'abcd')],
  ['a handle-array out with a capacity above the limit', () => api.tq_get_devices!(70000, true)],
  ['a number for a handle-array out request', () => api.tq_get_devices!(2, 1)],
];

for (const [what, call] of WRONG) {
  test(`wrong JavaScript type: ${what} is ERR_AVA_ARG_TYPE and nothing is sent`, async () => {
    const before = lib.session.callCount;
    const e = await rejection(call, what);
    assert.is(e.code, 'ERR_AVA_ARG_TYPE', `${what}: ${e.code} ${e.message}`);
    assert.ok(e instanceof ArgumentTypeError);
    assert.is(lib.session.callCount, before, 'a call was sent');
  });
}

test('ERR_AVA_ARG_TYPE names the function and the argument', async () => {
  const e = await rejection(api.tq_enqueue_read!(queue, buffer, 0, 16, new Uint8Array(8)));
  assert.is(e.details.fn, 'tq_enqueue_read');
  assert.is(e.details.arg, 'dst');
});

test('kernel argument bytes shorter than their size are ERR_AVA_ARG_TYPE and nothing is sent', async () => {
  // tq_set_kernel_arg reads `size` bytes from value: like a too-short bufferIn, a too-short value must be refused
  const before = lib.session.callCount;
  const e = await rejection(api.tq_set_kernel_arg!(kernel, 1, 4, new Uint8Array(1)));
  assert.is(e.code, 'ERR_AVA_ARG_TYPE');
  const e2 = await rejection(api.tq_set_kernel_arg!(kernel, 0, 8, new Uint8Array(4)));
  assert.is(e2.code, 'ERR_AVA_ARG_TYPE');
  assert.is(lib.session.callCount, before);
});

test('the session still works after refused arguments', async () => {
  const before = lib.session.callCount;
  const { ret } = await api.tq_enqueue_write!(queue, buffer, 0, 4, new Uint8Array([1, 2, 3, 4]));
  assert.is(ret, TQ.SUCCESS);
  const dst = new Uint8Array(4);
  await api.tq_enqueue_read!(queue, buffer, 0, 4, dst);
  assert.equal([...dst], [1, 2, 3, 4]);
  assert.is(lib.session.callCount, before + 2);
});

// ------------------------------------------------------------------------------------------------ API statuses

test('a failing build is ApiStatusError TQ_BUILD_FAILURE, and its log is readable afterwards', async () => {
  const p = (await api.tq_create_program!(context, 'fill bogus\naxpy')).ret as Handle;
  const e = await rejection(api.tq_build_program!(p, '-O2'));
  assert.ok(e instanceof ApiStatusError, `not an ApiStatusError: ${e.name}`);
  assert.is(e.code, 'ERR_AVA_API_STATUS');
  assert.is((e as ApiStatusError).status, -11);
  assert.is((e as ApiStatusError).status, TQ.BUILD_FAILURE);
  assert.is((e as ApiStatusError).statusName, 'TQ_BUILD_FAILURE');
  assert.is((e as ApiStatusError).fn, 'tq_build_program');
  const probe = await api.tq_get_program_info!(p, TQ.PROGRAM_BUILD_LOG, 0, null);
  const size = Number(probe.outs.size_ret);
  assert.is(size, "error: unknown kernel 'bogus'".length + 1);
  const log = new Uint8Array(size);
  await api.tq_get_program_info!(p, TQ.PROGRAM_BUILD_LOG, size, log);
  assert.is(Buffer.from(log.subarray(0, size - 1)).toString('utf8'), "error: unknown kernel 'bogus'");
  // the program stays unbuilt
  const e2 = await rejection(api.tq_create_kernel!(p, 'fill'));
  assert.is((e2 as ApiStatusError).statusName, 'TQ_PROGRAM_NOT_BUILT');
  await api.tq_release_program!(p);
});

test('a create with an errcode failure is ApiStatusError TQ_INVALID_VALUE', async () => {
  const e = await rejection(api.tq_create_buffer!(context, 0, 0, null));
  assert.ok(e instanceof ApiStatusError);
  assert.is(e.code, 'ERR_AVA_API_STATUS');
  assert.is((e as ApiStatusError).statusName, 'TQ_INVALID_VALUE');
  assert.is((e as ApiStatusError).status, TQ.INVALID_VALUE);
  assert.is((e as ApiStatusError).fn, 'tq_create_buffer');
  const e2 = await rejection(api.tq_create_queue!(context, devices[1]));
  assert.is((e2 as ApiStatusError).statusName, 'TQ_INVALID_DEVICE', 'a device of another context');
});

test('a failing status function is ApiStatusError with the status name', async () => {
  const e = await rejection(api.tq_enqueue_read!(queue, buffer, 12, 8, new Uint8Array(8)));
  assert.is((e as ApiStatusError).statusName, 'TQ_OUT_OF_RANGE');
  const e2 = await rejection(api.tq_set_kernel_arg!(kernel, 5, 8, buffer));
  assert.is((e2 as ApiStatusError).statusName, TQ_STATUS_NAMES[String(TQ.INVALID_ARG_INDEX)]);
});

// ------------------------------------------------------------------------------------------------ unsupported

const miniSpec = defineSpec({
  name: 'toyacc-mini',
  version: '1',
  library: { resolve: () => buildToyacc() },
  status: { type: 'int32', success: 0, names: TQ_STATUS_NAMES },
  handles: [{ name: 'queue', invalidStatus: TQ.INVALID_QUEUE }],
  functions: [
    fn('tq_debug_live_objects', ret.scalar('uint32'), 'query', []),
    fn('tq_finish', ret.status(), 'sync', [arg.handle('queue', 'queue')]),
    unsupported('tq_teleport', 'global', 'teleporting is not part of this test API'),
  ],
});

test('an unsupported function rejects with ERR_AVA_UNSUPPORTED naming it, without a call', async () => {
  const mini = await openGuestlib(miniSpec, { channel: await LocalChannel.open({ spec: miniSpec }) });
  try {
    const live = await mini.api.tq_debug_live_objects!();
    assert.type(live.ret, 'number');
    const before = mini.session.callCount;
    const e = await rejection(mini.api.tq_teleport!());
    assert.is(e.code, 'ERR_AVA_UNSUPPORTED');
    assert.is(e.details.fn, 'tq_teleport');
    assert.ok(e instanceof UnsupportedError);
    assert.is(mini.session.callCount, before);
    // a frame for it, sent anyway, is refused by the worker the same way and rebuilt as the same class
    const reply = await mini.session.call('tq_teleport', []);
    assert.ok(reply.error, 'the worker executed an unsupported function');
    assert.is(reply.error!.code, 'ERR_AVA_UNSUPPORTED');
    const rebuilt = fromWireError(reply.error!);
    assert.ok(rebuilt instanceof UnsupportedError);
    assert.ok(AvaError.isAvaError(rebuilt));
    assert.is(rebuilt.details.fn, 'tq_teleport');
    // other functions of the same session keep working
    assert.is((await rejection(mini.api.tq_finish!(new Handle('queue', 5)))).code, 'ERR_AVA_UNKNOWN_HANDLE');
  } finally {
    await mini.close();
  }
});

// ------------------------------------------------------------------------------------------------ the wire

test('errors rebuilt from the wire keep AvaError.isAvaError, their code and class', async () => {
  const handleError = await rejection(api.tq_finish!(new Handle('queue', 31337)));
  assert.ok(AvaError.isAvaError(handleError));
  assert.ok(handleError instanceof HandleError);
  assert.ok(handleError instanceof AvaError);
  assert.ok(handleError instanceof Error);

  // through a byte-level round trip (what a remote transport does)
  const roundTrip = (e: unknown): AvaError => fromWireError(JSON.parse(JSON.stringify(toWireError(e))) as WireError);
  const statusError = await rejection(api.tq_create_buffer!(context, 0, 0, null));
  for (const original of [handleError, statusError, new UnsupportedError('tq_x', 'reason'), new BadCallError('bad frame')]) {
    const back = roundTrip(original);
    assert.ok(AvaError.isAvaError(back), original.name);
    assert.is(back.code, original.code);
    assert.is(back.message, original.message);
    assert.equal(back.details, original.details);
    if (!(original instanceof BadCallError)) assert.is(back.name, original.name, 'rebuilt as its own class');
  }
  const status = roundTrip(statusError) as ApiStatusError;
  assert.ok(status instanceof ApiStatusError);
  assert.is(status.status, TQ.INVALID_VALUE);
  assert.is(status.statusName, 'TQ_INVALID_VALUE');
  assert.is((roundTrip(handleError) as HandleError).status, TQ.INVALID_QUEUE);

  // a malformed frame sent through the session comes back as data and rebuilds into a coded error
  const reply = await lib.session.call('tq_finish', []);
  assert.is(reply.error?.code, 'ERR_AVA_BAD_CALL');
  const rebuilt = fromWireError(reply.error!);
  assert.ok(AvaError.isAvaError(rebuilt));
  assert.is(rebuilt.code, 'ERR_AVA_BAD_CALL');

  // anything else becomes ERR_AVA_INTERNAL
  const internal = roundTrip(new TypeError('boom'));
  assert.is(internal.code, 'ERR_AVA_INTERNAL');
  assert.ok(AvaError.isAvaError(internal));
});

test('a closed guestlib rejects with ERR_AVA_CLOSED', async () => {
  const other = await openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec, worker }) });
  await other.api.tq_get_devices!(2, true);
  await other.close();
  assert.is((await rejection(other.api.tq_get_devices!(2, true))).code, 'ERR_AVA_CLOSED');
});

uvuTest.after(async () => {
  await lib.close();
  await worker.close();
});

uvuTest.run();
