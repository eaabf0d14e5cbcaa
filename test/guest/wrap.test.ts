/**
 * wrap(): the proxy in front of an API object the application already has; handleAt(); and the spec check of the
 * local channel.
 *
 * node --import tsx test/guest/wrap.test.ts
 */
import { test as uvuTest } from 'uvu';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { filter, firstValueFrom, map, Observable } from 'rxjs';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { channelKind } from '../../src/config.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import { Handle } from '../../src/guest/handle.js';
import { openGuestlib, wrap } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { defineSpec } from '../../src/spec/index.js';
import type { ApiSpec } from '../../src/spec/types.js';
import { LocalChannel } from '../../src/transport/local.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import { Worker } from '../../src/worker/worker.js';


async function rejection(p: Promise<unknown>): Promise<AvaError> {
  try {
    await p;
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `not an AvaError: ${String(error)}`);
    return error as AvaError;
  }
  throw new Error('resolved, a rejection was expected');
}

const worker = await Worker.open({ spec: toyaccSpec });
const localChannel = (): Promise<LocalChannel> => LocalChannel.open({ spec: toyaccSpec, worker });

/** Runs `body` with a guestlib and closes it after. */
async function using<T>(open: Promise<Guestlib<T>>, body: (lib: Guestlib<T>) => Promise<void>): Promise<void> {
  const lib = await open;
  try {
    await body(lib);
  } finally {
    await lib.close();
  }
}

// ------------------------------------------------------------------------------------------------ wrap

test('wrap remotes the spec\'s functions and keeps every other member of the existing object', async () => {
  const localCalls: string[] = [];
  const existing = {
    version: '1.2.3',
    greet(name: string): string {
      return `hello ${name} from ${this.version}`;
    },
    tq_finish: async (..._args: unknown[]): Promise<never> => {
      localCalls.push('tq_finish');
      throw new Error('the original tq_finish was called');
    },
    tq_get_devices: async (..._args: unknown[]): Promise<never> => {
      localCalls.push('tq_get_devices');
      throw new Error('the original tq_get_devices was called');
    },
    [Symbol.for('binding.tag')]: 'tagged',
  };
  await using(wrap(existing, toyaccSpec, { channel: await localChannel() }), async (lib) => {
    const before = lib.session.callCount;
    const { ret, outs } = await (lib.api as ApiObject).tq_get_devices!(2, true);
    assert.is(ret, TQ.SUCCESS);
    assert.is(lib.session.callCount, before + 1, 'the call went through the session');
    const devices = outs.devices as Handle[];
    assert.is(devices.length, 2);
    assert.ok(devices.every((d) => d instanceof Handle && d.kind === 'device'));
    const context = (await lib.api.tq_create_context!(1, [devices[0]])).ret as Handle;
    const queue = (await lib.api.tq_create_queue!(context, devices[0])).ret as Handle;
    await (lib.api as ApiObject).tq_finish!(queue);
    assert.is(lib.session.callCount, before + 4);
    assert.equal(localCalls, [], 'the original functions were not called');
    // non-spec members, as before (methods see the original object's other members)
    assert.is(lib.api.version, '1.2.3');
    assert.is(lib.api.greet('ava'), 'hello ava from 1.2.3');
    assert.is((lib.api as unknown as Record<symbol, unknown>)[Symbol.for('binding.tag')], 'tagged');
    assert.ok('greet' in lib.api);
    assert.ok('tq_release_buffer' in lib.api, 'spec functions the object lacks are there too');
    assert.not.ok('nonesuch' in lib.api);
    assert.is.not(lib.api.tq_finish, existing.tq_finish);
    assert.is(lib.session.callCount, before + 4, 'non-spec members send nothing');
    await lib.api.tq_release_queue!(queue);
    await lib.api.tq_release_context!(context);
  });
});

test('wrap of a direct native binding remotes it: handles become session ids', async () => {
  const native = await openNativeApi(toyaccSpec);
  try {
    const nativeDevices = (await native.api.tq_get_devices!(2, true)).outs.devices as Handle[];
    assert.ok(nativeDevices[0]!.id > 2 ** 32, 'natively, ids are the library\'s pointers');
    await using(wrap(native.api, toyaccSpec, { channel: await localChannel() }), async (lib) => {
      const before = lib.session.callCount;
      const devices = (await lib.api.tq_get_devices!(2, true)).outs.devices as Handle[];
      assert.is(lib.session.callCount, before + 1);
      assert.ok(devices.every((d) => d.id > 0 && d.id < 1000), `session ids expected, got ${devices.map(String)}`);
      const value = new Uint8Array(32);
      const { outs } = await lib.api.tq_get_device_info!(devices[1], TQ.DEVICE_NAME, 32, value);
      assert.is(Buffer.from(value.subarray(0, Number(outs.size_ret) - 1)).toString('latin1'), 'toyacc-1');
    });
  } finally {
    await native.close();
  }
});

test('the session\'s calls$ is an Observable of the application\'s rxjs: its operators and instanceof work on it', async () => {
  await using(openGuestlib(toyaccSpec, { channel: await localChannel() }), async (lib) => {
    assert.ok(lib.session.interceptor.calls$ instanceof Observable, 'an rxjs Observable');
    const seen = firstValueFrom(lib.session.interceptor.calls$.pipe(filter((e) => e.fn === 'tq_get_devices'), map((e) => e.fn)));
    await lib.api.tq_get_devices!(2, true);
    assert.is(await seen, 'tq_get_devices');
  });
});

test('wrap keeps methods and accessors of a class instance with private fields working', async () => {
  class Binding {
    #opened = 0;
    readonly name = 'legacy';
    open(): number {
      return ++this.#opened;
    }
    get opened(): number {
      return this.#opened;
    }
  }
  const existing = new Binding();
  await using(wrap(existing, toyaccSpec, { channel: await localChannel() }), async (lib) => {
    assert.is(lib.api.name, 'legacy');
    assert.is(lib.api.open(), 1);
    assert.is(lib.api.opened, 1);
    assert.is(existing.opened, 1, 'the original object saw the call');
  });
});

// ------------------------------------------------------------------------------------------------ handleAt

test('handleAt turns the ids of a TQ_CONTEXT_DEVICES value into the very handles tq_get_devices returned', async () => {
  await using(wrap({}, toyaccSpec, { channel: await localChannel() }), async (lib) => {
    const api = lib.api as ApiObject;
    const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
    const context = (await api.tq_create_context!(2, [devices[1], devices[0]])).ret as Handle;
    const value = new Uint8Array(24);
    const { outs } = await api.tq_get_context_info!(context, TQ.CONTEXT_DEVICES, 24, value);
    assert.is(outs.size_ret, 16);
    assert.is(lib.handleAt('device', value, 0), devices[1]);
    assert.is(lib.handleAt('device', value, 1), devices[0]);
    assert.is(lib.handleAt('device', value, 2), null, 'a zero slot');
    assert.is(lib.handleAt('device', value, 3), null, 'past the end');
    assert.is(lib.handleAt('device', value), devices[1], 'index 0 by default');
    // a view at an offset into a larger buffer
    const big = new Uint8Array(40);
    const view = new Uint8Array(big.buffer, 8, 16);
    await api.tq_get_context_info!(context, TQ.CONTEXT_DEVICES, 16, view);
    assert.is(lib.handleAt('device', view, 1), devices[0]);
    // other handle-valued parameters
    const buffer = (await api.tq_create_buffer!(context, 0, 8, null)).ret as Handle;
    const ctxValue = new Uint8Array(8);
    await api.tq_get_buffer_info!(buffer, TQ.BUFFER_CONTEXT, 8, ctxValue);
    assert.is(lib.handleAt('context', ctxValue), context);
    await api.tq_release_buffer!(buffer);
    await api.tq_release_context!(context);
  });
});

test('handleAt through openGuestlib and natively', async () => {
  await using(openGuestlib(toyaccSpec, { channel: await localChannel() }), async (lib) => {
    const devices = (await lib.api.tq_get_devices!(2, true)).outs.devices as Handle[];
    const context = (await lib.api.tq_create_context!(1, [devices[1]])).ret as Handle;
    const value = new Uint8Array(8);
    await lib.api.tq_get_context_info!(context, TQ.CONTEXT_DEVICES, 8, value);
    assert.is(lib.handleAt('device', value), devices[1]);
    assert.is.not(lib.handleAt('device', value), devices[0]);
    await lib.api.tq_release_context!(context);
  });
  const native = await openNativeApi(toyaccSpec);
  try {
    const devices = (await native.api.tq_get_devices!(2, true)).outs.devices as Handle[];
    const context = (await native.api.tq_create_context!(2, devices)).ret as Handle;
    const value = new Uint8Array(16);
    await native.api.tq_get_context_info!(context, TQ.CONTEXT_DEVICES, 16, value);
    assert.is(native.handleAt('device', value, 0), devices[0]);
    assert.is(native.handleAt('device', value, 1), devices[1]);
    await native.api.tq_release_context!(context);
  } finally {
    await native.close();
  }
});

// ------------------------------------------------------------------------------------------------ spec check

/** toyacc without one function: the same name, another hash. */
function toyaccVariant(drop: string | null): ApiSpec {
  return defineSpec({
    name: toyaccSpec.name,
    version: toyaccSpec.version,
    library: toyaccSpec.library,
    status: toyaccSpec.status,
    handles: toyaccSpec.handles,
    functions: toyaccSpec.functions.filter((f) => f.name !== drop),
  });
}

test('a LocalChannel to a worker of another spec is refused with ERR_AVA_CONFIG', async () => {
  const miniSpec = defineSpec({
    name: 'mini',
    version: '1',
    library: toyaccSpec.library,
    status: toyaccSpec.status,
    handles: [],
    functions: [toyaccSpec.fn.get('tq_debug_live_objects')!],
  });
  const other = await Worker.open({ spec: miniSpec });
  try {
    assert.is((await rejection(LocalChannel.open({ spec: toyaccSpec, worker: other }))).code, 'ERR_AVA_CONFIG');
    if (channelKind() === 'local') {
      // the default channel (AVA_CHANNEL unset or LOCAL) on a given worker
      assert.is((await rejection(openGuestlib(toyaccSpec, { worker: other }))).code, 'ERR_AVA_CONFIG');
      assert.is((await rejection(wrap({}, toyaccSpec, { worker: other }))).code, 'ERR_AVA_CONFIG');
    }
    assert.is(other.sessions.length, 0, 'no session was opened');
    // and the other way round
    assert.is((await rejection(LocalChannel.open({ spec: miniSpec, worker }))).code, 'ERR_AVA_CONFIG');
  } finally {
    await other.close();
  }
});

test('the spec check compares content: a same-named spec with another hash is refused, an equal one accepted', async () => {
  const variant = toyaccVariant('tq_debug_live_objects');
  assert.is(variant.name, toyaccSpec.name);
  assert.is.not(variant.hash, toyaccSpec.hash);
  assert.is((await rejection(LocalChannel.open({ spec: variant, worker }))).code, 'ERR_AVA_CONFIG');
  const equal = toyaccVariant(null);
  assert.is.not(equal, toyaccSpec);
  assert.is(equal.hash, toyaccSpec.hash);
  const channel = await LocalChannel.open({ spec: equal, worker });
  try {
    assert.is((await channel.call({ seq: 0, fn: 'tq_get_devices', args: [0, null, true] })).outs?.count, 2);
  } finally {
    await channel.close();
  }
});

uvuTest.after(async () => {
  await worker.close();
});

uvuTest.run();
