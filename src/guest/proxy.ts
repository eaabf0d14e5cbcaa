/**
 * The guestlib proxy: from a spec, an object with one async function per API function, whose calls are validated,
 * encoded into call frames, sent through a {@link GuestSession} and decoded back. Also `wrap()`, which puts the
 * same proxy in front of an API object an application already has.
 */
import type { ApiSpec, FunctionSpec } from '../spec/types.js';
import type { ReplyFrame, WireValue } from '../wire/frames.js';
import { deferredWithoutBlocking, planOf } from '../spec/plan.js';
import { buildApiObject, handleInInfo } from './api-object.js';
import type { ApiObject } from './call-shape.js';
import type { EncodedCall, HandleCodec } from './encode.js';
import { copyInto } from './encode.js';
import { HandleCache } from './handle.js';
import { HostMirrors } from './host-mirror.js';
import { wallClock } from '../wire/clock.js';
import type { Handle } from './handle.js';
import type { GuestSession } from './session.js';
import type { StatusMode } from './status.js';

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** How failure statuses surface. @defaultValue `'throw'` */
  readonly statusErrors?: StatusMode;
  /**
   * Send calls whose result is known in advance (creates with guest-issued ids, configure, enqueue, release...)
   * without waiting, batched; their failures surface at the next waiting call. Only in `throw` mode.
   * @defaultValue true on remote channels, false on the local channel
   */
  readonly asyncCalls?: boolean;
}

/** A proxy plus the helpers that need its handle table. */
export interface GuestProxy {
  /** One async function per spec function. */
  readonly api: ApiObject;
  /** The handle object for an id found in an info value (8-byte slots of ids; see the `info` role). */
  handleAt(kind: string, bytes: ArrayBufferView, index?: number): Handle | null;
}

/**
 * Makes the proxy of `spec` over `session`.
 * @example
 * const { api } = createProxy(spec, session);
 * const { outs } = await api.tq_get_devices(2, true);
 */
export function createProxy(spec: ApiSpec, session: GuestSession, options: ProxyOptions = {}): GuestProxy {
  const mode = options.statusErrors ?? 'throw';
  const handles = new HandleCache();
  const callbacks = new Map<number, { fn: (...args: unknown[]) => void; userData: unknown }>();
  const codec: HandleCodec = {
    idOf: (h) => h.id,
    newId: () => session.newHandleId(),
    handle: (kind, id) => handles.get(kind, id),
    callback: (fn, userData) => {
      const id = session.newCallbackId();
      callbacks.set(id, { fn, userData });
      return id;
    },
  };
  // Reads made without blocking: their bytes come as an event (see `FunctionSpec.deferred`), before the reply of
  // any later call that saw them done, and go into the application's array.
  const deliveries = new Map<number, ArrayBufferView>();
  const deliverInto = (f: FunctionSpec, encoded: EncodedCall): number | undefined => {
    const data = f.deferred?.data;
    if (data === undefined || !deferredWithoutBlocking(f, encoded.args)) return undefined;
    const dest = encoded.dests[planOf(f).indexOf.get(data)!];
    if (!dest) return undefined;
    const id = session.newCallbackId();
    deliveries.set(id, dest);
    return id;
  };
  session.onEvent((event) => {
    const dest = deliveries.get(event.callback);
    if (dest) {
      deliveries.delete(event.callback);
      // A failed read (null and its status) writes nothing: the application sees the failure in its event.
      if (event.args[0] instanceof Uint8Array) copyInto(dest, event.args[0]);
      return;
    }
    const entry = callbacks.get(event.callback);
    if (!entry) return;
    callbacks.delete(event.callback);
    const args = event.args.map((v: WireValue) => {
      const h = v as { handle?: number; kind?: string } | null;
      return h && typeof h === 'object' && typeof h.handle === 'number' && typeof h.kind === 'string' ? handles.get(h.kind, h.handle) : v;
    });
    entry.fn(...args, entry.userData);
  });

  const mirrors = new HostMirrors({
    extract: (id) => session.extractState(id),
    restore: (id, bytes, offset) => session.restoreState(id, bytes, offset),
  });
  const asyncCalls = options.asyncCalls ?? session.channel.kind !== 'local';
  const send = async (f: FunctionSpec, encoded: EncodedCall, t0: number | undefined): Promise<ReplyFrame> => {
    const deliver = deliverInto(f, encoded);
    const reply = await session.call(f.name, encoded.args, encoded.retId, t0, deliver);
    // Nothing will come for a read that failed.
    if (deliver !== undefined && (reply.error || reply.ret !== spec.status.success)) deliveries.delete(deliver);
    return reply;
  };
  const api = buildApiObject(spec, codec, mode, send, {
    before: (f, encoded) => mirrors.beforeCall(f, encoded),
    after: (f, encoded, result) => mirrors.afterCall(f, encoded, result),
    ...(asyncCalls ? { post: (f: FunctionSpec, encoded: EncodedCall, t0: number | undefined) => session.post(f.name, encoded.args, encoded.retId, t0) } : {}),
    stamp: () => (session.interceptor.observed ? wallClock() : undefined),
  });
  return { api, handleAt: (kind, bytes, index) => handleInInfo(handles, kind, bytes, index) };
}

/**
 * Puts the proxy `api` in front of an API object the application already has: the spec's functions are served by
 * `api`, everything else of `existing` is reached as before.
 */
export function overlay<T extends object>(existing: T, api: ApiObject): T & ApiObject {
  // A separate target: `existing` may be frozen (its own members could not be replaced through a proxy of it), and
  // its methods run with `this` = `existing`, so classes with #private fields keep working.
  return new Proxy(Object.create(null) as object, {
    get(_target, key) {
      if (typeof key === 'string' && Object.hasOwn(api, key)) return api[key];
      const value: unknown = Reflect.get(existing, key, existing);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(existing) : value;
    },
    has(_target, key) {
      return (typeof key === 'string' && Object.hasOwn(api, key)) || Reflect.has(existing, key);
    },
  }) as T & ApiObject;
}
